"""SSH to the hosts: one asyncssh connection per host per release, every command capped.

Output of a command is streamed to `on_line` one line at a time. stdout and stderr are
merged without a prefix, each assembled into lines on its own (a line never mixes the
two). A line longer than `ssh_line_max_bytes` is cut there and ends with a marker; after
`ssh_step_output_max_bytes` of output in one command, `on_line` gets one last line saying
so, and the rest is read and discarded (`CommandResult.truncated`). Nothing is buffered
beyond one line per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pathlib
from collections.abc import Callable
from dataclasses import dataclass

import asyncssh

from services.settings import Settings
from services.ssh.hostkeys import HostKey, KnownHosts, SshError, check_address, host_pattern

__all__ = ["CommandResult", "HostKey", "HostSession", "SshError", "SshService"]

log = logging.getLogger("ferry.ssh")

# Cheap for the hosts where the CPU has AES instructions; asyncssh's defaults follow.
# TCP_NODELAY needs no option: asyncssh sets it on every TCP connection it makes.
ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"
_STDERR = asyncssh.EXTENDED_DATA_STDERR


@dataclass(frozen=True)
class CommandResult:
    exit_status: int | None  # None: killed by a signal, or no status was sent
    output_bytes: int  # all output received, including what was discarded
    truncated: bool


class _Output:
    """Splits a command's output into capped lines for `on_line`."""

    def __init__(self, on_line: Callable[[str], None] | None, line_max: int,
                 total_max: int) -> None:
        self._on_line = on_line
        self._line_max, self._total_max = line_max, total_max
        self._partial = {None: bytearray(), _STDERR: bytearray()}
        self._cutting = {None: False, _STDERR: False}
        self.output_bytes = 0
        self.truncated = False
        self.error: BaseException | None = None

    def feed(self, data: bytes, stream: int | None) -> None:
        budget = self._total_max - self.output_bytes
        self.output_bytes += len(data)
        if self.truncated:
            return
        if len(data) > budget:
            self._split(data[:budget], stream)
            self.finish()
            self.truncated = True
            self._emit(f"[output truncated at {self._total_max} bytes; the rest was discarded]")
        else:
            self._split(data, stream)

    def finish(self) -> None:
        """End of output: the last unterminated line of each stream."""
        for stream, buf in self._partial.items():
            if buf and not self._cutting[stream]:
                self._emit_bytes(buf)
            buf.clear()
            self._cutting[stream] = False

    def _split(self, data: bytes, stream: int | None) -> None:
        if self._on_line is None:
            return
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            self._append(data[start:end], stream)
            if not self._cutting[stream]:
                self._emit_bytes(self._partial[stream])
            self._partial[stream].clear()
            self._cutting[stream] = False
            start = end + 1
        self._append(data[start:], stream)

    def _append(self, piece: bytes, stream: int | None) -> None:
        if self._cutting[stream]:
            return
        buf = self._partial[stream]
        room = self._line_max - len(buf)
        if len(piece) <= room:
            buf += piece
            return
        buf += piece[:room]
        self._emit_bytes(buf, cut=True)
        buf.clear()
        self._cutting[stream] = True

    def _emit_bytes(self, data: bytearray, cut: bool = False) -> None:
        text = data.decode("utf-8", "replace").removesuffix("\r")
        self._emit(f"{text} [line cut at {self._line_max} bytes]" if cut else text)

    def _emit(self, line: str) -> None:
        if self._on_line is None or self.error is not None:
            return
        try:
            self._on_line(line)
        except Exception as exc:  # reported by run(), after the channel is closed
            self.error = exc


class _CommandSession(asyncssh.SSHClientSession):
    def __init__(self, output: _Output) -> None:
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
                     on_line: Callable[[str], None] | None = None) -> CommandResult:
        """Stream the file `source` into the stdin of `command` (e.g. `tar -xz`)."""
        return await self._exec(command, pathlib.Path(source), timeout, on_line)

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
                    on_line: Callable[[str], None] | None) -> CommandResult:
        s = self._settings
        output = _Output(on_line, s.ssh_line_max_bytes, s.ssh_step_output_max_bytes)
        chan: asyncssh.SSHClientChannel | None = None
        try:
            async with asyncio.timeout(timeout):
                chan, session = await self._conn.create_session(
                    lambda: _CommandSession(output), command, encoding=None)
                if source is None:
                    chan.write_eof()
                else:
                    await self._send_file(chan, session, source)
                await chan.wait_closed()
        except TimeoutError:
            _abort(chan)
            raise SshError(f"command timed out after {timeout:g}s") from None
        except asyncssh.ChannelOpenError as exc:
            if self._conn.is_closed():
                raise SshError(f"connection to {self.where} was lost") from None
            raise SshError(f"{self.where} refused to start a command: {exc.reason}") from None
        except (asyncssh.Error, OSError) as exc:
            _abort(chan)
            raise SshError(f"connection to {self.where} failed during a command: "
                           f"{_describe(exc)}") from None
        except BaseException:  # cancelled, or a bug: never leave the command running
            _abort(chan)
            raise
        output.finish()
        if output.error is not None:
            raise output.error
        status = chan.get_exit_status()
        if status is None and chan.get_exit_signal() is None:
            detail = f": {_describe(session.lost)}" if session.lost else ""
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
            f = await asyncio.to_thread(open, source, "rb")
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


def _abort(chan: asyncssh.SSHClientChannel | None) -> None:
    """Ask the remote command to stop (TERM), then close the channel."""
    if chan is None:
        return
    with contextlib.suppress(Exception):
        chan.send_signal("TERM")
    with contextlib.suppress(Exception):
        chan.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason or type(exc).__name__
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _parse_jump(spec: str) -> tuple[str | None, str, int]:
    """`user@address:port` (user and port optional) → (user, address, port)."""
    user, _, rest = spec.rpartition("@")
    address, port = rest, 22
    if rest.startswith("["):
        address, _, tail = rest[1:].partition("]")
        if tail:
            port = int(tail.removeprefix(":"))
    elif rest.count(":") == 1:
        address, port_text = rest.split(":")
        port = int(port_text)
    return user or None, address, port


class SshService:
    """Connections, host key scans and Ferry's known_hosts."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._known_hosts = KnownHosts(settings.known_hosts_path)
        self._keys: dict[tuple[str, ...], tuple[tuple, list]] = {}

    async def connect(self, host: dict) -> HostSession:
        """Open the one connection a release uses for `host` (a host document)."""
        address, port, user = host["address"], int(host.get("port") or 22), host["user"]
        check_address(address, port)
        keys = ((host["key_path"],) if host.get("key_path")
                else tuple(self._settings.ssh_client_keys))
        tunnel = None
        if host.get("jump_host"):
            try:
                j_user, j_address, j_port = _parse_jump(host["jump_host"])
                check_address(j_address, j_port)
            except (ValueError, SshError):
                raise SshError(f"not a valid jump host: {host['jump_host']!r}") from None
            try:
                tunnel = await self._open(j_address, j_port, j_user or user, keys, None)
            except SshError as exc:
                raise SshError(f"jump host {host['jump_host']}: {exc.reason}") from None
        try:
            conn = await self._open(address, port, user, keys, tunnel)
        except BaseException:
            if tunnel:
                tunnel.close()
            raise
        log.debug("connected to %s as %s%s", address, user, " via a jump host" if tunnel else "")
        return HostSession(self._settings, conn, f"{address}:{port}", tunnel)

    async def scan_host_key(self, address: str, port: int) -> HostKey:
        """The key the host offers: no authentication, nothing trusted."""
        check_address(address, port)
        try:
            key = await asyncio.wait_for(
                asyncssh.get_server_host_key(address, port, config=None),
                self._settings.ssh_keyscan_timeout_s)
        except Exception as exc:
            raise SshError(self._reason(exc, address, port, "")) from None
        if key is None:
            raise SshError(f"{address}:{port} offered no host key")
        return HostKey.from_key(address, port, key)

    async def trust_host_key(self, address: str, port: int, public_key: str) -> None:
        """Trust `public_key` for [address]:port, replacing any key it had."""
        await self._known_hosts.trust(address, port, public_key)

    async def forget_host_key(self, address: str, port: int) -> None:
        await self._known_hosts.forget(address, port)

    async def _open(self, address: str, port: int, user: str, key_paths: tuple[str, ...],
                    tunnel: asyncssh.SSHClientConnection | None) -> asyncssh.SSHClientConnection:
        s = self._settings
        known_hosts = self._known_hosts.load()
        # Explicit keys: exactly those, no agent. None: asyncssh's defaults (agent, ~/.ssh).
        auth = {}
        if key_paths:
            auth = {"client_keys": self._client_keys(key_paths), "agent_path": None}
        try:
            return await asyncssh.connect(
                address, port, tunnel=tunnel or (), username=user, known_hosts=known_hosts,
                config=None, agent_forwarding=False, x11_forwarding=False,
                connect_timeout=s.ssh_connect_timeout_s, login_timeout=s.ssh_login_timeout_s,
                keepalive_interval=s.ssh_keepalive_interval_s,
                keepalive_count_max=s.ssh_keepalive_count_max,
                encryption_algs=ENCRYPTION_ALGS, **auth)
        except Exception as exc:
            reason = self._reason(exc, address, port, user)
            if isinstance(exc, asyncssh.HostKeyNotVerifiable | asyncssh.KeyExchangeFailed):
                reason = await self._host_key_reason(address, port) or reason
            raise SshError(reason) from None

    def _client_keys(self, paths: tuple[str, ...]) -> list:
        """Key pairs loaded once, and again only when a key file changes."""
        stamps = []
        for path in paths:
            try:
                stamps.append(os.stat(path).st_mtime_ns)
            except OSError as exc:
                raise SshError(f"cannot read client key {path}: {exc.strerror}") from None
        cached = self._keys.get(paths)
        if cached and cached[0] == tuple(stamps):
            return cached[1]
        try:
            keys = asyncssh.load_keypairs(list(paths))
        except (OSError, ValueError, asyncssh.KeyImportError) as exc:
            raise SshError(f"cannot load client key {', '.join(paths)}: "
                           f"{_describe(exc)}") from None
        self._keys[paths] = (tuple(stamps), keys)
        return keys

    async def _host_key_reason(self, address: str, port: int) -> str | None:
        name = host_pattern(address, port)
        if not self._known_hosts.has_entry(address, port):
            return f"host key for {name} is not known; scan and confirm it first"
        try:
            offered = (await self.scan_host_key(address, port)).fingerprint
        except SshError:
            offered = "a key that could not be read"
        return (f"host key for {name} has changed (server offers {offered}); "
                "re-scan and confirm it if this is expected")

    def _reason(self, exc: Exception, address: str, port: int, user: str) -> str:
        where = f"{address}:{port}"
        if isinstance(exc, ConnectionRefusedError):
            return f"connection refused by {where}"
        if isinstance(exc, TimeoutError):
            return f"timed out connecting to {where}"
        if isinstance(exc, asyncssh.PermissionDenied):
            return f"authentication failed for user {user} at {where}"
        if isinstance(exc, asyncssh.DisconnectError):
            return f"{where} closed the connection: {_describe(exc)}"
        if isinstance(exc, OSError):
            return f"cannot connect to {where}: {_describe(exc)}"
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"
