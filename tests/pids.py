"""Processes in tests: waiting for one to be gone (nothing outlives a hook), and reading a
command line that may vanish while it is read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import psutil


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


def command_line(process: psutil.Process) -> str:
    """A process's command line, or "" when it has exited meanwhile (short-lived children
    such as a host's shell come and go while a test looks)."""
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return ""
