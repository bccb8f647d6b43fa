"""SSH to the hosts: one asyncssh connection per host per release (session.py runs the
commands over it), host keys checked against Ferry's own known hosts, key exchanges
bounded (`ssh_handshakes_max`), and a connection's failure told in words.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import pathlib
from concurrent.futures import ThreadPoolExecutor

import asyncssh

from services.settings import Settings
from services.ssh.hostkeys import (
    HostKey,
    KnownHosts,
    SshError,
    check_address,
    host_pattern,
    read_regular_file,
)
from services.ssh.session import CommandResult, HostSession, describe_error

__all__ = ["CommandResult", "HostKey", "HostSession", "SshError", "SshService"]

log = logging.getLogger("ferry.ssh")

# Cheap for the hosts where the CPU has AES instructions; asyncssh's defaults follow.
# TCP_NODELAY needs no option: asyncssh sets it on every TCP connection it makes.
ENCRYPTION_ALGS = "^aes128-gcm@openssh.com,aes256-gcm@openssh.com"


def parse_jump_host(spec: str) -> tuple[str | None, str, int]:
    """`user@address:port` (user and port optional) → (user, address, port); raises
    ValueError when the port is not a number."""
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
        # Key files and known_hosts are read here, never on the event loop: a key_path
        # that is a FIFO or on a stalled mount must not freeze the server.
        self._files = ThreadPoolExecutor(settings.ssh_file_threads,
                                         thread_name_prefix="ferry-ssh-files")
        self._known_hosts = KnownHosts(settings.known_hosts_path, self._files,
                                       settings.ssh_known_hosts_max_bytes)
        self._keys: dict[str, tuple[bytes, bytes | None, list]] = {}
        # Connections being opened (TCP, key exchange, authentication) at once, over every
        # release: a batch of many hosts queues here instead of starting all its key
        # exchanges together, and each host's ssh_connect_timeout_s counts from when its
        # own attempt starts, not from when it joined the queue.
        self._handshakes = asyncio.Semaphore(max(1, settings.ssh_handshakes_max))
        # Failed connection attempts by kind (refused, timeout, auth, …), for metrics.
        self.connect_failures: collections.Counter[str] = collections.Counter()

    def close(self) -> None:
        """Stop the file-reading threads (a read stuck on a dead mount is abandoned)."""
        self._files.shutdown(wait=False, cancel_futures=True)

    async def connect(self, host: dict) -> HostSession:
        """Open the one connection a release uses for `host` (a host document)."""
        address, port, user = host["address"], int(host.get("port") or 22), host["user"]
        check_address(address, port)
        keys = ((host["key_path"],) if host.get("key_path")
                else tuple(self._settings.ssh_client_keys))
        tunnel = None
        if host.get("jump_host"):
            try:
                j_user, j_address, j_port = parse_jump_host(host["jump_host"])
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
        # Explicit keys: exactly those, no agent. None: asyncssh's defaults (agent, ~/.ssh).
        auth = {}
        if key_paths:
            auth = {"client_keys": await self._client_keys(key_paths), "agent_path": None}
        known_hosts = await self._known_hosts.load()
        try:
            async with self._handshakes:
                conn = await asyncssh.connect(
                    address, port, tunnel=tunnel or (), username=user,
                    known_hosts=known_hosts, config=None, agent_forwarding=False,
                    x11_forwarding=False, connect_timeout=s.ssh_connect_timeout_s,
                    login_timeout=s.ssh_login_timeout_s,
                    keepalive_interval=s.ssh_keepalive_interval_s,
                    keepalive_count_max=s.ssh_keepalive_count_max,
                    encryption_algs=ENCRYPTION_ALGS, **auth)
        except Exception as exc:
            self.connect_failures[failure_kind(exc)] += 1
            reason = self._reason(exc, address, port, user)
            if isinstance(exc, asyncssh.HostKeyNotVerifiable | asyncssh.KeyExchangeFailed):
                reason = await self._host_key_reason(address, port) or reason
            raise SshError(reason) from None
        return unless_cancelled(conn)

    async def _client_keys(self, paths: tuple[str, ...]) -> list:
        """The key pairs of `paths`, read in the file pool within ssh_key_read_timeout_s."""
        timeout = self._settings.ssh_key_read_timeout_s
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.get_running_loop().run_in_executor(
                    self._files, self._load_keys, paths)
        except TimeoutError:
            raise SshError(f"reading client key {', '.join(paths)} took more than "
                           f"{timeout:g}s") from None

    def _load_keys(self, paths: tuple[str, ...]) -> list:
        """In a pool thread. A key is parsed again only when its file's bytes change;
        a `<key>-cert.pub` beside it is used as its certificate, as OpenSSH does."""
        keys = []
        max_bytes = self._settings.ssh_key_max_bytes
        for path in paths:
            data = read_regular_file(path, max_bytes, "client key")
            cert_path = f"{path}-cert.pub"
            cert = (read_regular_file(cert_path, max_bytes, "client key certificate")
                    if pathlib.Path(cert_path).exists() else None)
            cached = self._keys.get(path)
            if cached and cached[0] == data and cached[1] == cert:
                keys.extend(cached[2])
                continue
            try:
                key = asyncssh.import_private_key(data)
                pairs = asyncssh.load_keypairs(
                    [key], certlist=[asyncssh.import_certificate(cert)] if cert else ())
            except (ValueError, asyncssh.KeyImportError) as exc:
                raise SshError(f"cannot load client key {path}: {describe_error(exc)}") from None
            self._keys[path] = (data, cert, pairs)
            keys.extend(pairs)
        return keys

    async def _host_key_reason(self, address: str, port: int) -> str | None:
        name = host_pattern(address, port)
        if not await self._known_hosts.has_entry(address, port):
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
            return f"{where} closed the connection: {describe_error(exc)}"
        if isinstance(exc, OSError):
            return f"cannot connect to {where}: {describe_error(exc)}"
        return f"cannot connect to {where}: {type(exc).__name__}: {exc}"


def unless_cancelled(conn: asyncssh.SSHClientConnection) -> asyncssh.SSHClientConnection:
    """`conn`, or CancelledError (and `conn` closed) when this task was cancelled meanwhile.

    asyncssh.connect bounds the attempt with asyncio.wait_for, which in Python 3.11 returns
    the connection when it is made in the same turn of the loop as a cancel: the cancel is
    lost, and a host of a cancelled release would run to the end. The task still counts
    the request (Task.cancelling), so it is honoured here."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        conn.close()
        raise asyncio.CancelledError
    return conn


def failure_kind(exc: Exception) -> str:
    """A connection failure's kind, from a small fixed set (a metrics label, never free text)."""
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, asyncssh.PermissionDenied):
        return "auth"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable | asyncssh.KeyExchangeFailed):
        return "host_key"
    if isinstance(exc, asyncssh.DisconnectError):
        return "disconnected"
    if isinstance(exc, OSError):
        return "network"
    return "other"
