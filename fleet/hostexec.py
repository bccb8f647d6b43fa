"""How a fleet host runs a command: the SSH session of one `exec` request, its child
process in the host's mount namespace, and the pipes between them, with no thread per
child and bounded buffers (see fleet/simulator.py for the fleet itself)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

import asyncssh

if TYPE_CHECKING:
    from fleet.simulator import Fleet, FleetHost

KILL_GRACE_S = 2.0  # after TERM, a command's process group gets KILL
STDIN_HIGH_WATER = 128 * 1024  # buffered input above which the channel stops reading
READ_CHUNK = 64 * 1024


class FleetError(Exception):
    """The fleet cannot run here (not root, no mount namespaces, ...)."""


class _Child:
    """A child process watched through a pidfd (no waiter thread, no SIGCHLD handler)."""

    @classmethod
    async def spawn(cls, argv: list[str], *, stdin: int, stdout: int, stderr: int,
                    cwd: Path, env: dict) -> _Child:
        # Popen in a thread: its vfork suspends that thread, not the event loop, until
        # the exec (~2.5 ms on a busy machine). No pass_fds: it makes Popen close fds one
        # by one (5 ms with 2,000 fds open) instead of one close_range; nsenter reaches
        # the namespace through /proc/PID/fd instead. A process group of its own (killed
        # as one), not a session: with autogroup scheduling each new session is a CPU
        # group at full weight, and every command would escape the fleet's lowered
        # priority (bench --fleet-nice), as though the hosts were this machine.
        popen = await asyncio.to_thread(
            subprocess.Popen, argv, stdin=stdin, stdout=stdout, stderr=stderr, cwd=cwd,
            env=env, process_group=0)
        return cls(popen)

    def __init__(self, popen: subprocess.Popen) -> None:
        self.popen = popen
        self.pid = popen.pid
        self.exited = asyncio.get_running_loop().create_future()
        self._pidfd = os.pidfd_open(self.pid)
        asyncio.get_running_loop().add_reader(self._pidfd, self._on_exit)

    def _on_exit(self) -> None:
        asyncio.get_running_loop().remove_reader(self._pidfd)
        os.close(self._pidfd)
        self.exited.set_result(self.popen.wait())

    def kill_group(self, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, sig)


def _pipe() -> tuple[int, int]:
    r, w = os.pipe2(os.O_CLOEXEC)
    return r, w


class _ExecSession(asyncssh.SSHServerSession):
    """`bash -c <command>` in the host's namespace, its pipes pumped to the channel."""

    def __init__(self, fleet: Fleet, host: FleetHost) -> None:
        self._fleet, self._host = fleet, host
        self._chan: asyncssh.SSHServerChannel | None = None
        self._command = ""
        self._child: _Child | None = None
        self._stdin_fd: int | None = None
        self._stdin_buf = bytearray()
        self._stdin_eof = False
        self._reading_paused = False
        self._out: dict[int, int | None] = {}  # fd -> datatype, open output pipes
        self._writing_paused = False
        self._closed = False

    # --- channel callbacks -------------------------------------------------------
    def connection_made(self, chan: asyncssh.SSHServerChannel) -> None:
        self._chan = chan

    def shell_requested(self) -> bool:
        return False

    def pty_requested(self, term_type, term_size, term_modes) -> bool:
        return False

    def exec_requested(self, command: str) -> bool:
        self._command = command
        return True

    def session_started(self) -> None:
        self._host.commands += 1
        task = asyncio.ensure_future(self._start())
        self._fleet.starting.add(task)
        task.add_done_callback(self._fleet.starting.discard)

    def data_received(self, data: bytes, datatype) -> None:
        self._stdin_buf += data
        self._flush_stdin()

    def eof_received(self) -> bool:
        self._stdin_eof = True
        self._flush_stdin()
        return True

    def signal_received(self, signame: str) -> None:
        sig = getattr(signal, "SIG" + signame, None)
        if self._child and sig is not None:
            self._child.kill_group(sig)

    def pause_writing(self) -> None:
        self._writing_paused = True
        for fd in self._out:
            asyncio.get_running_loop().remove_reader(fd)

    def resume_writing(self) -> None:
        self._writing_paused = False
        for fd, datatype in self._out.items():
            asyncio.get_running_loop().add_reader(fd, self._pump_out, fd, datatype)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._shutdown()

    def _shutdown(self) -> None:
        """The channel is gone: signal the command's group, drop its pipes."""
        child = self._child
        if child and not (child.exited.done() and not self._out):
            child.kill_group(signal.SIGTERM)
            asyncio.get_running_loop().call_later(
                KILL_GRACE_S, child.kill_group, signal.SIGKILL)
        self._close_stdin()
        for fd in list(self._out):
            self._close_out(fd)

    # --- the child -------------------------------------------------------------------
    async def _start(self) -> None:
        try:
            ns_fd = await self._fleet.namespace_fd(self._host)
        except FleetError as exc:
            self._chan.write_stderr(f"{exc}\n".encode())
            self._chan.exit(255)
            return
        if self._closed:
            return
        in_r, in_w = _pipe()
        out_r, out_w = _pipe()
        err_r, err_w = _pipe()
        try:
            child = await _Child.spawn(
                ["nsenter", f"--mount=/proc/{os.getpid()}/fd/{ns_fd}", "bash", "-c",
                 self._command],
                stdin=in_r, stdout=out_w, stderr=err_w, cwd=self._host.root,
                env=self._fleet.command_env(self._host))
        except BaseException:
            for fd in (in_w, out_r, err_r):
                os.close(fd)
            raise
        finally:
            for fd in (in_r, out_w, err_w):
                os.close(fd)
        self._child = child
        self._fleet.children.add(child)
        child.exited.add_done_callback(self._on_child_exit)
        for fd in (in_w, out_r, err_r):
            os.set_blocking(fd, False)
        self._stdin_fd = in_w
        self._out = {out_r: None, err_r: asyncssh.EXTENDED_DATA_STDERR}
        if self._closed:  # the channel closed while the command was starting
            self._shutdown()
            return
        if not self._writing_paused:
            self.resume_writing()
        self._flush_stdin()

    def _on_child_exit(self, fut: asyncio.Future) -> None:
        self._fleet.children.discard(self._child)
        self._maybe_exit()

    def _maybe_exit(self) -> None:
        if self._closed or self._out or not self._child or not self._child.exited.done():
            return
        code = self._child.exited.result()
        if code >= 0:
            self._chan.exit(code)
        else:
            name = signal.Signals(-code).name.removeprefix("SIG")
            self._chan.exit_with_signal(name)

    def _pump_out(self, fd: int, datatype) -> None:
        try:
            data = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        if data and not self._closed:
            try:
                self._chan.write(data, datatype)
            except BrokenPipeError:  # the client went away mid-command: drop the output
                self._closed = True
                self._shutdown()
        elif not data:
            self._close_out(fd)
            self._maybe_exit()

    def _close_out(self, fd: int) -> None:
        asyncio.get_running_loop().remove_reader(fd)
        self._out.pop(fd, None)
        os.close(fd)

    def _flush_stdin(self) -> None:
        loop = asyncio.get_running_loop()
        fd = self._stdin_fd
        if fd is not None:
            try:
                while self._stdin_buf:
                    n = os.write(fd, self._stdin_buf[:READ_CHUNK])
                    del self._stdin_buf[:n]
            except BlockingIOError:
                pass
            except BrokenPipeError:  # the command stopped reading: drop its input
                self._stdin_buf.clear()
                self._close_stdin()
                fd = None
        if fd is not None:
            if self._stdin_buf:
                loop.add_writer(fd, self._flush_stdin)
            else:
                loop.remove_writer(fd)
                if self._stdin_eof:
                    self._close_stdin()
        full = len(self._stdin_buf) >= STDIN_HIGH_WATER
        if full != self._reading_paused and not self._closed:
            self._reading_paused = full
            (self._chan.pause_reading if full else self._chan.resume_reading)()

    def _close_stdin(self) -> None:
        if self._stdin_fd is not None:
            asyncio.get_running_loop().remove_writer(self._stdin_fd)
            os.close(self._stdin_fd)
            self._stdin_fd = None
