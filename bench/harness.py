"""What the benchmarks share: a fleet in its own process (the simulator or real OpenSSH
servers) and the CPU it spends, Ferry's services on a throwaway embedded database with the
fleet registered, a git repository of a given size, and peak RSS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from fleet.cpuacct import CpuGroup, descendants, peak_rss_mb, tree_cpu_ms
from services import Services
from services.embedded_db import EmbeddedDatabase
from services.settings import Settings
from services.store import Store

TERMINAL = ("succeeded", "failed", "cancelled", "rolled_back", "interrupted")

ROOT = Path(__file__).resolve().parent.parent
__all__ = [
    "ROOT",
    "BenchSetup",
    "FleetHandle",
    "bench_setup",
    "commit_payload",
    "ferry_on_fleet",
    "fleet_process",
    "make_repo",
    "peak_rss_mb",
]


_GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"}


def make_repo(path: Path, megabytes: float) -> None:
    """A one-commit repository on main with VERSION and `megabytes` of random bytes."""
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=path, check=True,
                   capture_output=True)
    commit_payload(path, megabytes, "bench")


def commit_payload(path: Path, megabytes: float, version: str) -> None:
    """A new commit on main: VERSION and a fresh `megabytes` of random bytes, so that its
    artifact is new to every host."""
    (path / "VERSION").write_text(version + "\n")
    (path / "payload.bin").write_bytes(os.urandom(int(megabytes * 1024 * 1024)))
    for args in (["add", "-A"], ["commit", "-q", "-m", version]):
        subprocess.run(["git", *args], cwd=path, env=_GIT_ENV, check=True, capture_output=True)


def lower_priority(nice: int) -> None:
    """Lower this process's CPU priority, and its children's. With autogroup scheduling
    (Linux's default for desktops) nice only ranks processes within a session, so the
    (new) session's group is lowered too."""
    os.nice(nice)
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))


FLEET_MODULES = {"asyncssh": "fleet", "openssh": "fleet.openssh"}


@dataclass
class FleetHandle:
    """A fleet running in its own process, and the CPU its hosts spend."""

    kind: str
    manifest_path: Path
    manifest: dict
    process: subprocess.Popen
    cgroup: CpuGroup | None = None

    def cpu_ms(self) -> float:
        """CPU of the fleet's whole process tree so far, exited children included: its
        cgroup when it has one (exact), else its live processes' own + reaped children's."""
        path = self.manifest.get("cgroup")
        if path:
            return CpuGroup(Path(path)).usage_ms()
        if self.cgroup is not None:
            return self.cgroup.usage_ms()
        return tree_cpu_ms(self.manifest.get("pids") or [self.process.pid])

    def process_count(self) -> int:
        path = self.manifest.get("cgroup") or (self.cgroup and self.cgroup.path)
        if path:
            return len(CpuGroup(Path(path)).pids())
        return len(descendants(self.manifest.get("pids") or [self.process.pid]))

    async def settle(self, baseline: int, timeout_s: float = 10.0) -> None:
        """Wait until the fleet is back to `baseline` processes: every session a deploy
        opened has ended, so its CPU is all counted."""
        deadline = asyncio.get_running_loop().time() + timeout_s
        while asyncio.get_running_loop().time() < deadline:
            if self.process_count() <= baseline:
                return
            await asyncio.sleep(0.05)

    def cpu_source(self) -> str:
        return "cgroup" if self.manifest.get("cgroup") or self.cgroup else "proc"


@contextlib.asynccontextmanager
async def fleet_process(hosts: int, root: Path, *, nice: int = 0, kind: str = "asyncssh",
                        log_commands: bool = False,
                        own_session: bool = False) -> AsyncIterator[FleetHandle]:
    """A fleet in its own process: `python -m fleet` (asyncssh servers, the simulator) or
    `python -m fleet.openssh` (one real sshd per host). `nice` lowers the CPU priority of
    the fleet and every command it runs. The simulator gets a cgroup of its own here when
    one can be made (the OpenSSH fleet makes its own), so its CPU can be counted.
    `own_session` (implied by `nice`): the fleet in a session of its own, so that with
    autogroup scheduling it gets a share of the CPU as another machine would, rather
    than one taken from the benchmark's own share (Ferry and the browser)."""
    manifest = root / "fleet.json"
    command = [sys.executable, "-m", FLEET_MODULES[kind], "--hosts", str(hosts), "--root",
               str(root / "fleet"), "--manifest", str(manifest)]
    if log_commands:
        if kind != "openssh":
            raise ValueError("only the OpenSSH fleet notes the commands it runs")
        command.append("--log-commands")
    if shutil.which("setpriv"):  # the fleet ends with the benchmark, even a killed one
        command = ["setpriv", "--pdeathsig", "TERM", *command]
    cgroup = CpuGroup.create("simulator") if kind == "asyncssh" else None
    if cgroup is not None:  # in the group before it runs anything
        command = ["sh", "-c", 'echo $$ > "$0" && exec "$@"', cgroup.procs_file, *command]
    process = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
        start_new_session=bool(nice) or own_session,
        preexec_fn=(lambda: lower_priority(nice)) if nice else None)
    try:
        line = await asyncio.to_thread(process.stdout.readline)
        if b"ready" not in line:
            raise RuntimeError(f"the {kind} fleet did not start")
        yield FleetHandle(kind, manifest, json.loads(manifest.read_text()), process, cgroup)
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(process.wait, 60)
        if cgroup is not None:
            await asyncio.to_thread(cgroup.remove)


@dataclass
class BenchSetup:
    services: Services
    root: Path
    fleet: FleetHandle
    database: EmbeddedDatabase

    @property
    def manifest(self) -> dict:
        return self.fleet.manifest


@contextlib.asynccontextmanager
async def bench_setup(hosts: int, *, admin_password: str, fleet_nice: int = 0,
                      fleet_kind: str = "asyncssh", log_commands: bool = False,
                      fleet_own_session: bool = False,
                      **settings: object) -> AsyncIterator[BenchSetup]:
    """A temporary folder, a fleet, the embedded database and Ferry's services with every
    fleet host registered (group "bench") and trusted."""
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        root = Path(tmp)
        async with fleet_process(hosts, root, nice=fleet_nice, kind=fleet_kind,
                                 log_commands=log_commands,
                                 own_session=fleet_own_session) as fleet, \
                EmbeddedDatabase(":memory:") as database:
            # exclusive_db: the embedded database is this process's alone, as server.py
            # runs it when given no --mongo-url (a bench may say otherwise in `settings`).
            chosen = {"exclusive_db": True, "ssh_command_timeout_s": 600, **settings}
            services = Services(
                Settings(data_dir=root / "ferry", git_allow_file_urls=True, **chosen),
                Store(database.url, "bench"))
            await services.open()
            try:
                await services.auth.ensure_admin(admin_password)
                await register(services, fleet.manifest)
                yield BenchSetup(services, root, fleet, database)
            finally:
                await services.close()


@contextlib.asynccontextmanager
async def ferry_on_fleet(hosts: int, *, admin_password: str, fleet_nice: int = 0,
                         **settings: object) -> AsyncIterator[tuple[Services, Path, dict]]:
    """bench_setup on the simulator; yields (services, folder, fleet manifest)."""
    async with bench_setup(hosts, admin_password=admin_password, fleet_nice=fleet_nice,
                           **settings) as setup:
        yield setup.services, setup.root, setup.manifest


async def follow_release(services: Services, release_id: int) -> None:
    """Wait for a release's end as a watching page does, through its events (no database
    command while they come); a quiet second asks the release, in case the end was missed."""
    topic, cursor = f"release:{release_id}", 0
    while True:
        events = await services.events.wait(topic, cursor, 1.0, internal=True)
        for event in events:
            cursor = event["seq"]
            if event["type"] == "release" and event["data"].get("state") in TERMINAL:
                return
        if not events and (await services.releases.get(release_id))["state"] in TERMINAL:
            return


async def register(services: Services, manifest: dict) -> None:
    for host in manifest["hosts"]:
        await services.hosts.create({
            "name": host["name"], "address": host["address"], "port": host["port"],
            "user": manifest["user"], "key_path": manifest["client_key"], "groups": ["bench"]})
        await services.ssh.trust_host_key(host["address"], host["port"], host["public_key"])
