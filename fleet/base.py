"""What both fleets share, whatever serves SSH (asyncssh in the simulator, OpenSSH's sshd):
host addresses, the host list, each host's private /srv, the manifest Ferry's tests and
benchmarks read, and running until a signal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path

from fleet.hostexec import FleetError

USER = "deploy"


def host_address(index: int, first_address: tuple[int, int] = (1, 1)) -> str:
    """127.0.x.y of host `index`: y runs 1..250, then x moves on by one."""
    x, y = first_address
    y += index
    x += (y - 1) // 250
    y = (y - 1) % 250 + 1
    if x > 255:
        raise FleetError(f"host {index} is past 127.0.255.250")
    return f"127.0.{x}.{y}"


@dataclass(eq=False)
class HostBase:
    """One host: where it listens, its host key, and the folder holding its /srv."""

    index: int
    name: str
    address: str
    root: Path
    key_path: Path
    port: int = 0
    public_key: str = ""
    fingerprint: str = ""

    def document(self, user: str, key_path: Path) -> dict:
        """The host as Ferry stores it."""
        return {"name": self.name, "address": self.address, "port": self.port,
                "user": user, "key_path": str(key_path), "jump_host": None}


class FleetBase:
    """N hosts on 127.0.x.y, each with its own key and filesystem; an async context
    manager (start on enter, stop on exit). Subclasses serve SSH."""

    host_class: type[HostBase] = HostBase

    def __init__(self, root: Path, count: int, *, name_prefix: str, first_address:
                 tuple[int, int], user: str) -> None:
        self.root = Path(root).resolve()
        self.user = user
        self.client_key_path = self.root / ".fleet" / "client_key"
        self.client_public_key = ""
        self.hosts = [
            self.host_class(i, f"{name_prefix}-{i}", host_address(i, first_address),
                            self.root / f"{name_prefix}-{i}",
                            self.root / ".fleet" / f"{name_prefix}-{i}.host_key")
            for i in range(count)]

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> FleetBase:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()

    def host_path(self, i: int, path: str) -> Path:
        """The real path on disk of `path` (under /srv) as host i sees it."""
        rel = os.path.normpath(path)
        if rel != "/srv" and not rel.startswith("/srv/"):
            raise ValueError(f"only /srv is private to a host, not {path}")
        return self.hosts[i].root / rel.lstrip("/")

    def host_document(self, i: int) -> dict:
        return self.hosts[i].document(self.user, self.client_key_path)

    def known_hosts_text(self) -> str:
        return "".join(f"[{h.address}]:{h.port} {h.public_key}\n" for h in self.hosts)

    def manifest(self) -> dict:
        """What `python -m fleet…` writes for Ferry's tests, benchmarks and the demo."""
        return {"client_key": str(self.client_key_path), "user": self.user,
                "hosts": [{"name": h.name, "address": h.address, "port": h.port,
                           "public_key": h.public_key, "fingerprint": h.fingerprint,
                           "root": str(h.root)} for h in self.hosts]}


async def serve_until_signalled(fleet: FleetBase, manifest: Path) -> None:
    """Start `fleet`, write its manifest, say "fleet ready", and run until SIGINT/SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fleet:
        tmp = manifest.with_name(manifest.name + ".tmp")
        tmp.write_text(json.dumps(fleet.manifest(), indent=1))
        os.replace(tmp, manifest)
        print("fleet ready", flush=True)
        await stop.wait()
