"""Run a local hook script (before_checkout, after_checkout) without blocking the loop:
streamed line by line, output capped, killed with its process group on timeout.

The hook is the leader of a session of its own; the moment it exits, whatever it left
running in its process group (`nohup cmd &`) is killed too, so nothing a hook starts
outlives it on the Ferry server. Its exit is seen through a pidfd, not through the end
of its output, which a leftover child could hold open.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path

from services.output import OutputLines
from services.settings import Settings


class LocalHookError(Exception):
    """The hook failed; str(error) says how."""


async def run_local_hook(script: str, cwd: Path, env: Mapping[str, str], *, timeout_s: float,
                         line_max: int, output_max: int, on_line: Callable[[str], None],
                         lines_max: int = Settings.ssh_step_output_max_lines) -> None:
    """Runs `bash -e -c script` in `cwd`; raises LocalHookError on failure or timeout."""
    loop = asyncio.get_running_loop()
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    try:
        # Popen in a thread: its fork and exec suspend that thread, not the event loop.
        process = await asyncio.to_thread(
            subprocess.Popen, ["bash", "--noprofile", "--norc", "-e", "-c", script],
            cwd=str(cwd), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                               "HOME": str(cwd), "LANG": "C.UTF-8", **env},
            stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd,
            start_new_session=True)
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    reader = asyncio.StreamReader(limit=line_max + 1)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", 0))
    exited = _exit_of(process.pid)
    pump = asyncio.ensure_future(
        _pump(reader, OutputLines(on_line, line_max, output_max, lines_max)))
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(exited)
            _kill_group(process.pid)  # what the hook left behind
            await pump
    except TimeoutError:
        raise LocalHookError(f"timed out after {timeout_s:g}s") from None
    finally:
        _kill_group(process.pid)
        pump.cancel()
        transport.close()
        with contextlib.suppress(BaseException):
            await pump
        await asyncio.shield(exited)
        status = process.wait()  # already exited: reaps it without blocking
    if status != 0:
        raise LocalHookError(f"exited with status {status}")


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _exit_of(pid: int) -> asyncio.Future:
    """Resolves when process `pid` (our child, not yet reaped) has exited."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    pidfd = os.pidfd_open(pid)

    def on_exit() -> None:
        loop.remove_reader(pidfd)
        os.close(pidfd)
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, on_exit)
    return done


async def _pump(stream: asyncio.StreamReader, output: OutputLines) -> None:
    """Reads in chunks; OutputLines splits and caps the lines, so neither one huge line
    nor a flood of short ones can grow a buffer or the log. Past the caps the pipe is
    still drained (the hook never blocks on it) and the rest discarded."""
    while chunk := await stream.read(65536):
        output.feed(chunk)
    output.finish()
    if output.error is not None:
        raise output.error
