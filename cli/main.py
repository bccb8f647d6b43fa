"""Entry point of the `ferry` command (filled in by the CLI work)."""

import sys


def main() -> None:
    print("ferry: not built yet", file=sys.stderr)
    sys.exit(2)
