"""One host's session: commands run over an open connection, their output capped, a
file streamed into a command's stdin.

Output of a command is streamed to `on_line` one line at a time. stdout and stderr are
merged without a prefix, each assembled into lines on its own (a line never mixes the
two). The caps (`ssh_line_max_bytes`, `ssh_step_output_max_bytes`,
`ssh_step_output_max_lines`) are those of services/output.py: past them output is read
and discarded, and `on_line` gets one last line saying how much
(`CommandResult.truncated`). Nothing is buffered beyond one line per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import pathlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import BinaryIO

import asyncssh

from services.output import OutputLines
from services.settings import Settings
from services.ssh.hostkeys import SshError

__all__ = ["CommandResult", "HostSession"]


@dataclass(frozen=True)
class CommandResult:
    exit_status: int | None  # None: killed by a signal, or no status was sent
    output_bytes: int  # all output received, including what was discarded
    truncated: bool


class _CommandSession(asyncssh.SSHClientSession):
    def __init__(self, output: OutputLines) -> None:
        self.output = output
        self.lost: Exception | None = None
        self.closed = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()

    def data_received(self, data: bytes, datatype: int | None) -> None:
        self.output.feed(data, datatype)

    def eof_received(self) -> bool:
        return True  # keep the channel until the server closes it, after the exit status

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = exc
        self.closed.set()
        self._writable.set()

    async def writable(self) -> None:
        await self._writable.wait()


class HostSession:
    """One SSH connection to one host, reused for every command of a release."""

    def __init__(self, settings: Settings, conn: asyncssh.SSHClientConnection, where: str,
                 tunnel: asyncssh.SSHClientConnection | None = None) -> None:
        self._settings = settings
        self._conn = conn
        self._tunnel = tunnel
        self.where = where  # "address:port", for messages

    async def run(self, command: str, *, timeout: float,  # noqa: ASYNC109 (every command has one)
                  on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Run `command` with stdin closed; its output goes to `on_line` line by line."""
        return await self._exec(command, None, timeout, on_line)

    async def upload(self, command: str, source: pathlib.Path, *,
                     timeout: float,  # noqa: ASYNC109 (every command has one)
                     on_line: Callable[[str], None] | None = None,
                     send_when: Awaitable[bool] | None = None) -> CommandResult:
        """Stream the file `source` into the stdin of `command` (e.g. `tar -xz`).

        With `send_when`, the command decides first (one exec request for a command
        that may not need the file): the file is sent once `send_when` gives True, stdin
        is closed at once when it gives False, and nothing is sent if the command ends
        before. `on_line` is what usually settles it, from the command's first line."""
        return await self._exec(command, pathlib.Path(source), timeout, on_line, send_when)

    async def close(self) -> None:
        self._conn.close()
        with contextlib.suppress(Exception):
            await self._conn.wait_closed()
        if self._tunnel:
            self._tunnel.close()
            with contextlib.suppress(Exception):
                await self._tunnel.wait_closed()

    async def _exec(self, command: str, source: pathlib.Path | None,
                    timeout: float,  # noqa: ASYNC109
                    on_line: Callable[[str], None] | None,
                    send_when: Awaitable[bool] | None = None) -> CommandResult:
        s = self._settings
        output = OutputLines(on_line, s.ssh_line_max_bytes, s.ssh_step_output_max_bytes,
                             s.ssh_step_output_max_lines)
        chan: asyncssh.SSHClientChannel | None = None
        try:
            async with asyncio.timeout(timeout):
                chan, session = await self._conn.create_session(
                    lambda: _CommandSession(output), command, encoding=None)
                if source is not None and send_when is not None:
                    source = source if await _decided(send_when, session) else None
                if source is None:
                    if not session.closed.is_set():
                        chan.write_eof()
                else:
                    await self._send_file(chan, session, source)
                await chan.wait_closed()
        except TimeoutError:
            _abort(chan)
            output.finish()  # what it printed before the timeout, and what was cut
            raise SshError(f"command timed out after {timeout:g}s") from None
        except asyncssh.ChannelOpenError as exc:
            if self._conn.is_closed():
                raise SshError(f"connection to {self.where} was lost") from None
            raise SshError(f"{self.where} refused to start a command: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:
            _abort(chan)
            raise SshError(f"connection to {self.where} failed during a command: "
                           f"{describe_error(exc)}") from None
        except BaseException:  # cancelled, or a bug: never leave the command running
            _abort(chan)
            with contextlib.suppress(Exception):
                output.finish()  # a caller's own deadline: what was printed, what was cut
            raise
        output.finish()
        if output.error is not None:
            raise output.error
        status = chan.get_exit_status()
        if status is None and chan.get_exit_signal() is None:
            detail = f": {describe_error(session.lost)}" if session.lost else ""
            raise SshError(f"connection to {self.where} was lost during a command{detail}")
        return CommandResult(None if status is None or status < 0 else status,
                             output.output_bytes, output.truncated)

    async def _send_file(self, chan: asyncssh.SSHClientChannel, session: _CommandSession,
                         source: pathlib.Path) -> None:
        """One chunk in flight at a time, on top of the channel's own bounded buffer.

        The reads are small sync reads of one chunk: the artifact was just written, so
        it is in the page cache, and a thread hop per chunk would cost more than the read.
        """
        chunk = self._settings.ssh_upload_chunk_bytes
        try:
            f = await _open_for_reading(source)
        except OSError as exc:
            raise SshError(f"cannot read {source}: {exc.strerror}") from None
        with f:
            while not session.closed.is_set():
                data = f.read(chunk)
                if not data:
                    chan.write_eof()
                    return
                try:
                    chan.write(data)
                except BrokenPipeError:  # the command ended without reading it all
                    return
                await session.writable()


async def _open_for_reading(path: pathlib.Path) -> BinaryIO:
    """Open `path` in a thread. Cancelled meanwhile (a cancelled release), the thread still
    opens it: the file is then closed as soon as it is open, never left to leak."""
    opening = asyncio.ensure_future(asyncio.to_thread(open, path, "rb"))
    try:
        return await asyncio.shield(opening)
    except asyncio.CancelledError:
        opening.add_done_callback(_close_opened)
        raise


def _close_opened(opening: asyncio.Future) -> None:
    if not opening.cancelled() and opening.exception() is None:
        opening.result().close()


async def _decided(send_when: Awaitable[bool], session: _CommandSession) -> bool:
    """The answer of `send_when`, or False when the command ends without giving one."""
    decision = asyncio.ensure_future(send_when)
    ended = asyncio.ensure_future(session.closed.wait())
    try:
        await asyncio.wait((decision, ended), return_when=asyncio.FIRST_COMPLETED)
    finally:
        ended.cancel()
        if not decision.done():
            decision.cancel()
    return decision.done() and not decision.cancelled() and bool(decision.result())


def _abort(chan: asyncssh.SSHClientChannel | None) -> None:
    """Ask the remote command to stop (TERM), then close the channel."""
    if chan is None:
        return
    with contextlib.suppress(Exception):
        chan.send_signal("TERM")
    with contextlib.suppress(Exception):
        chan.close()


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
