"""What the benchmarks share: a fleet in its own process, Ferry's services on a throwaway
embedded database with the fleet registered, a git repository of a given size, and the
peak RSS of this process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

from services import Services
from services.embedded_db import EmbeddedDatabase
from services.settings import Settings
from services.store import Store

ROOT = Path(__file__).resolve().parent.parent


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM; unlike ru_maxrss it does not inherit the parent's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def make_repo(path: Path, megabytes: float) -> None:
    """A one-commit repository on main with VERSION and `megabytes` of random bytes."""
    path.mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}
    (path / "VERSION").write_text("bench\n")
    (path / "payload.bin").write_bytes(os.urandom(int(megabytes * 1024 * 1024)))
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "bench"]):
        subprocess.run(["git", *args], cwd=path, env=env, check=True, capture_output=True)


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority, and its children's. With autogroup scheduling
    (Linux's default for desktops) nice only ranks processes within a session, so the
    (new) session's group is lowered too."""
    os.nice(nice)
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))


@contextlib.asynccontextmanager
async def fleet_process(hosts: int, root: Path, *,
                        nice: int = 0) -> AsyncIterator[tuple[Path, dict]]:
    """`python -m fleet.simulator` in its own process; yields its manifest path and content.
    `nice` lowers the CPU priority of the fleet and every command it runs."""
    manifest = root / "fleet.json"
    process = subprocess.Popen(
        [sys.executable, "-m", "fleet", "--hosts", str(hosts), "--root",
         str(root / "fleet"), "--manifest", str(manifest)],
        cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=bool(nice), preexec_fn=(lambda: lower_priority(nice)) if nice else None)
    try:
        line = await asyncio.to_thread(process.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError("fleet did not start")
        yield manifest, json.loads(manifest.read_text())
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)


@contextlib.asynccontextmanager
async def ferry_on_fleet(hosts: int, *, admin_password: str, fleet_nice: int = 0,
                         **settings: object) -> AsyncIterator[tuple[Services, Path, dict]]:
    """A temporary folder, a fleet, and Ferry's services with every fleet host registered
    (group "bench") and trusted. Yields (services, folder, fleet manifest)."""
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        root = Path(tmp)
        async with fleet_process(hosts, root, nice=fleet_nice) as (_, manifest), \
                EmbeddedDatabase(":memory:") as database:
            services = Services(
                Settings(data_dir=root / "ferry", git_allow_file_urls=True, exclusive_db=True,
                         ssh_command_timeout_s=600, **settings),
                Store(database.url, "bench"))
            await services.open()
            try:
                await services.auth.ensure_admin(admin_password)
                await register(services, manifest)
                yield services, root, manifest
            finally:
                await services.close()


async def register(services: Services, manifest: dict) -> None:
    for host in manifest["hosts"]:
        await services.hosts.create({
            "name": host["name"], "address": host["address"], "port": host["port"],
            "user": manifest["user"], "key_path": manifest["client_key"], "groups": ["bench"]})
        await services.ssh.trust_host_key(host["address"], host["port"], host["public_key"])
