"""Ferry's own known_hosts file: read once per change, rewritten atomically, and the one
safe way to read a file the SSH side needs (keys, known_hosts): in a worker thread, never
on the event loop, and only when it is a regular file of bounded size."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import re
import stat
import threading
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import asyncssh

# Addresses and host names only: nothing that could add a pattern, a marker or a
# second entry to a known_hosts line.
_ADDRESS = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")    # whole string: fullmatch only


class SshError(Exception):
    """An SSH failure with a clear, secret-free reason for people to read."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason


@dataclass(frozen=True)
class HostKey:
    """A host key as a key scan saw it, for a person to confirm."""

    address: str
    port: int
    key_type: str  # e.g. "ssh-ed25519"
    fingerprint: str  # "SHA256:..."
    public_key: str  # OpenSSH one-line form: "<type> <base64>"

    @classmethod
    def from_key(cls, address: str, port: int, key: asyncssh.SSHKey) -> HostKey:
        return cls(address, port, key.get_algorithm(), key.get_fingerprint("sha256"),
                   public_key_line(key))


def public_key_line(key: asyncssh.SSHKey) -> str:
    """`<type> <base64>`, without any comment."""
    return " ".join(key.export_public_key("openssh").decode("ascii").split()[:2])


def host_pattern(address: str, port: int) -> str:
    """The known_hosts name of a host: `addr` on port 22, else `[addr]:port`."""
    return address if port == 22 else f"[{address}]:{port}"


def check_address(address: str, port: int) -> None:
    if not isinstance(address, str) or not (_ADDRESS.fullmatch(address) or _is_ip(address)):
        raise SshError(f"not a valid host address: {address!r}")
    if not isinstance(port, int) or not 0 < port < 65536:
        raise SshError(f"not a valid port: {port!r}")


def _is_ip(address: str) -> bool:
    """An IPv4 or IPv6 literal (IPv6 may start with ':', e.g. ::1); no %zone."""
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return False
    return "%" not in address


def read_regular_file(path: str | Path, max_bytes: int, what: str, *,
                      follow: bool = False) -> bytes:
    """The bytes of `path`, for a worker thread. Refuses what is not a regular file
    (a FIFO would block the reader for ever, a device could be endless) and, unless
    `follow`, a symlink; the open itself never blocks (O_NONBLOCK)."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY
    try:
        fd = os.open(path, flags | (0 if follow else os.O_NOFOLLOW))
    except OSError as exc:
        if exc.errno == errno.ELOOP and not follow:
            raise SshError(f"{what} {path} is a symbolic link; give the path of the file "
                           "itself") from None
        raise SshError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise SshError(f"{what} {path} is not a regular file")
        if st.st_size > max_bytes:
            raise SshError(f"{what} {path} is larger than {max_bytes} bytes")
        os.set_blocking(fd, True)
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            size += len(chunk)
            if size > max_bytes:
                raise SshError(f"{what} {path} is larger than {max_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise SshError(f"cannot read {what} {path}: {exc.strerror}") from None
    finally:
        os.close(fd)


class KnownHosts:
    """The known_hosts file at `path`, parsed again only when it changes on disk; read
    and written in `executor`, never on the event loop."""

    def __init__(self, path: Path, executor: Executor, max_bytes: int) -> None:
        self._path = Path(path)
        self._executor = executor
        self._max_bytes = max_bytes
        self._stamp: tuple | None = None
        self._hosts = asyncssh.SSHKnownHosts()
        self._load_lock = threading.Lock()
        self._write_lock = asyncio.Lock()

    async def load(self) -> asyncssh.SSHKnownHosts:
        """The parsed file; a stat per call, a parse only after a change."""
        return await asyncio.get_running_loop().run_in_executor(self._executor,
                                                                self._load_sync)

    def _load_sync(self) -> asyncssh.SSHKnownHosts:
        with self._load_lock:
            try:
                st = os.stat(self._path)
                stamp: tuple | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                stamp = None
            except OSError as exc:
                raise SshError(f"cannot read known hosts file {self._path}: "
                               f"{exc.strerror}") from None
            if stamp != self._stamp:
                hosts = asyncssh.SSHKnownHosts()
                if stamp:
                    data = read_regular_file(self._path, self._max_bytes, "known hosts file",
                                             follow=True)
                    try:
                        hosts = asyncssh.import_known_hosts(data.decode("utf-8", "replace"))
                    except (ValueError, asyncssh.KeyImportError) as exc:
                        raise SshError(f"cannot read known hosts file {self._path}: "
                                       f"{exc}") from None
                self._hosts, self._stamp = hosts, stamp
            return self._hosts

    async def has_entry(self, address: str, port: int) -> bool:
        return bool((await self.load()).match(address, address, port)[0])

    async def trust(self, address: str, port: int, public_key: str) -> None:
        """Make `public_key` the one trusted key of [address]:port."""
        check_address(address, port)
        try:
            key = asyncssh.import_public_key(public_key.strip())
        except (asyncssh.KeyImportError, ValueError, UnicodeError):
            raise SshError("not a valid OpenSSH public key") from None
        line = f"{host_pattern(address, port)} {public_key_line(key)}\n"
        await self._rewrite(host_pattern(address, port), line)

    async def forget(self, address: str, port: int) -> None:
        check_address(address, port)
        await self._rewrite(host_pattern(address, port), None)

    async def _rewrite(self, pattern: str, line: str | None) -> None:
        async with self._write_lock:
            await asyncio.get_running_loop().run_in_executor(
                self._executor, self._rewrite_sync, pattern, line)

    def _rewrite_sync(self, pattern: str, line: str | None) -> None:
        try:
            old = self._path.read_text().splitlines(keepends=True)
        except FileNotFoundError:
            old = []
        kept = [entry for entry in old if not _names(entry) or pattern not in _names(entry)]
        kept = [e if e.endswith("\n") else e + "\n" for e in kept]
        if line:
            kept.append(line)
        self._path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._path.with_name(self._path.name + ".tmp")
        tmp.write_text("".join(kept))
        os.chmod(tmp, 0o644)
        os.replace(tmp, self._path)


def _names(entry: str) -> list[str]:
    """The host names of one known_hosts line (after an optional @marker)."""
    fields = entry.split()
    if fields and fields[0].startswith("@"):
        fields = fields[1:]
    if not fields or fields[0].startswith("#"):
        return []
    return fields[0].split(",")
