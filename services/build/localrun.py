"""Run a local hook script (before_checkout, after_checkout) without blocking the loop:
streamed line by line, output capped, killed with its process group on timeout."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path


class LocalHookError(Exception):
    """The hook failed; str(error) says how."""


async def run_local_hook(script: str, cwd: Path, env: Mapping[str, str], *, timeout_s: float,
                         line_max: int, output_max: int,
                         on_line: Callable[[str], None]) -> None:
    """Runs `bash -e -c script` in `cwd`; raises LocalHookError on failure or timeout."""
    process = await asyncio.create_subprocess_exec(
        "bash", "-e", "-c", script, cwd=str(cwd),
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(cwd),
             "LANG": "C.UTF-8", **env},
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        await asyncio.wait_for(_pump(process.stdout, line_max, output_max, on_line), timeout_s)
        status = await asyncio.wait_for(process.wait(), timeout_s)
    except (TimeoutError, asyncio.CancelledError) as error:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        if isinstance(error, asyncio.CancelledError):
            raise
        raise LocalHookError(f"timed out after {timeout_s:g}s") from None
    if status != 0:
        raise LocalHookError(f"exited with status {status}")


async def _pump(stream: asyncio.StreamReader, line_max: int, output_max: int,
                on_line: Callable[[str], None]) -> None:
    """Reads in chunks and splits lines itself, so one huge line cannot grow a buffer."""
    total = 0
    pending = b""
    while True:
        chunk = await stream.read(65536)
        if not chunk:
            break
        if total >= output_max:
            continue
        total += len(chunk)
        pending += chunk
        *lines, pending = pending.split(b"\n")
        if len(pending) > line_max:
            lines.append(pending)
            pending = b""
        for line in lines:
            on_line(line[:line_max].decode("utf-8", "replace").rstrip("\r"))
        if total >= output_max:
            on_line(f"[ferry] output truncated after {output_max} bytes")
            pending = b""
    if pending:
        on_line(pending[:line_max].decode("utf-8", "replace").rstrip("\r"))
