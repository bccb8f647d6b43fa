"""The security floor's version minimums hold for what is installed."""

from importlib.metadata import version

import pytest


def as_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


@pytest.mark.parametrize("package, minimum", [
    ("tornado", "6.6.1"), ("GitPython", "3.2.1"), ("asyncssh", "2.24.1")])
def test_installed_versions_meet_the_security_floor(package, minimum):
    assert as_tuple(version(package)) >= as_tuple(minimum)
