"""Waiting for a process to be gone, for tests that check nothing outlives a hook."""

from __future__ import annotations

import asyncio
from pathlib import Path


async def pid_gone(pid: int) -> bool:
    """Waits until `pid` is dead (a zombie counts: killed, waiting for its new parent)."""
    for _ in range(200):
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        await asyncio.sleep(0.05)
    return False
