"""Admission of network git work (clone, fetch): the outbound address policy, concurrency
limits and a connect/TLS probe, all on the event loop before a pool thread is taken.

Why: a remote that accepts TCP and never completes TLS holds a git process for curl's
300 s connect timeout, which git does not expose; enough of them starved every other
blocking task. Here a remote gets `git_connect_timeout_s` to complete TCP (and TLS for
https) before git runs; at most `git_fetch_concurrency` fetches run at once and
`git_fetch_per_remote` per host:port, and waiting for a turn costs no thread. git then
connects to the address that was checked (https: curl's resolve pin; ssh: HostName with
HostKeyAlias), so a DNS answer that changes after the check is not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import shlex
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from services.git.refs import Remote, remote_of
from services.git.runner import UNREACHABLE, GitError
from services.outbound import AddressPolicy, OutboundRefused
from services.settings import Settings


@dataclass(frozen=True)
class Pin:
    """Extra `-c` options and environment that make git connect to the checked address."""

    options: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


class RemoteGate:
    """Decides whether, when and where git may connect for one URL."""

    def __init__(self, settings: Settings, ssh_command: str) -> None:
        self.policy = AddressPolicy.from_settings(settings)
        self.connect_timeout = settings.git_connect_timeout_s
        self.per_remote = max(1, settings.git_fetch_per_remote)
        self.ssh_command = ssh_command
        self._all = asyncio.Semaphore(max(1, settings.git_fetch_concurrency))
        # One per remote host:port ever fetched from: bounded by the projects' URLs.
        self._remotes: dict[str, asyncio.Semaphore] = {}

    async def check(self, url: str) -> None:
        """The policy alone (saving a project URL): refused addresses raise GitError; a
        name that does not resolve now is accepted and checked again at each fetch."""
        remote = remote_of(url)
        if remote is not None:
            try:
                await self.policy.resolve(remote.host, remote.port)
            except OutboundRefused as error:
                raise GitError(f"repository URL refused: {error}") from None

    @contextlib.asynccontextmanager
    async def admit(self, url: str) -> AsyncIterator[Pin]:
        """Wait for a turn, check the address, probe it, and hold the turn while git runs."""
        remote = remote_of(url)
        if remote is None:                 # file:// or a local path: no network
            yield Pin()
            return
        turn = self._remotes.setdefault(remote.key, asyncio.Semaphore(self.per_remote))
        async with turn, self._all:
            try:
                addresses = await self.policy.resolve(remote.host, remote.port)
            except OutboundRefused as error:
                raise GitError(f"repository URL refused: {error}") from None
            address = await self._probe(remote, addresses)
            yield self._pin(remote, address)

    async def _probe(self, remote: Remote, addresses: list[str]) -> str:
        """The first address that completes TCP (+TLS for https) in time; else the one
        generic UNREACHABLE error, whatever went wrong."""
        context = None
        if remote.scheme == "https":
            # Only "does the handshake finish": git verifies the certificate itself.
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        for address in addresses:
            writer = None
            try:
                async with asyncio.timeout(self.connect_timeout):
                    _, writer = await asyncio.open_connection(
                        address, remote.port, ssl=context,
                        server_hostname=remote.host if context else None)
                return address
            except (OSError, TimeoutError, ssl.SSLError):
                continue
            finally:
                if writer is not None:
                    writer.transport.abort()
        raise GitError(UNREACHABLE)

    def _pin(self, remote: Remote, address: str) -> Pin:
        if _is_literal(remote.host):
            return Pin()
        if remote.scheme == "https":
            shown = f"[{address}]" if ":" in address else address
            return Pin(options=["-c", f"http.curloptResolve={remote.host}:{remote.port}:{shown}"])
        # Host keys stay filed under the name (and port) the URL gave.
        alias = remote.host if remote.port == 22 else f"[{remote.host}]:{remote.port}"
        return Pin(env={"GIT_SSH_COMMAND": (
            f"{self.ssh_command} -o HostName={shlex.quote(address)} "
            f"-o HostKeyAlias={shlex.quote(alias)}")})


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
