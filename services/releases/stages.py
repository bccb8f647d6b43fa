"""What every stage shares, local or on a host: how it fails, how it is skipped, its time."""

from __future__ import annotations

import time


class StageFailed(Exception):
    """A stage failed on one host (or locally); str(error) is the reason shown."""


class StageSkipped(Exception):
    """Raised inside a stage to mark it skipped (no hook configured, nothing to do)."""


def elapsed_ms(started: float) -> int:
    """Milliseconds since `started` (a time.monotonic() reading)."""
    return int((time.monotonic() - started) * 1000)
