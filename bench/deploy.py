"""Deploy benchmark: Ferry's engine against a minimal asyncssh script on the same fleet.

    python -m bench.deploy --fleet openssh --hosts 200 --parallel 50 --artifact-mb 5 --repeat 3

Starts a fleet (`openssh`: one real sshd per host, the default; `asyncssh`: the simulator)
in its own process, the embedded database and Ferry's services in this process. Each round
commits M MiB of fresh incompressible data, deploys it with Ferry to every host (the
standard job: checkout and package once, then on each host mkdir, upload, extract, atomic
switch, a health check command, prune), checks every host's `current`, then runs
bench/reference_asyncssh.py (its own process) with the same artifact on the same fleet.
Ferry and the reference alternate for `--repeat` rounds; the figures are medians.

Measured for each side, per host:
- fleet_cpu_ms_per_host: CPU of the fleet's whole process tree during the deploy (every
  sshd and all it ran, exited included; the fleet's own cgroup when one can be made);
- controller_cpu_ms_per_host: Ferry's process with its children (git) and its database
  child; for the reference, its process (after start-up);
- execs_per_host, connections_per_host: from the OpenSSH hosts' logs.
`--log-commands` gives the OpenSSH hosts a shell that notes every command, and prints what
host-0 ran for each side (the figures of such a run are not the fleet's true cost).

Final line: JSON {"hosts", "hosts_ok", "wall_s", "reference_wall_s", "ratio", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import (
    ROOT,
    BenchSetup,
    bench_setup,
    commit_payload,
    follow_release,
    make_repo,
    peak_rss_mb,
)
from fleet.cpuacct import peak_rss_mb as process_peak_rss_mb
from fleet.cpuacct import process_cpu_ms
from services import Services

KEEP = 3  # releases kept, by Ferry's project and by the reference
HEALTH = "test -s VERSION"  # the health check, run in `current` on each host
_EXEC = re.compile(rb"Starting session: (?:command|subsystem)")
_CONNECTION = re.compile(rb"Connection from \S+ port \d+ on ")


async def ferry_deploy(services: Services, parallel: int) -> tuple[dict, float]:
    """Start the release and follow its events, as a watching page does (long-poll),
    until it ends; then one snapshot. (Taking a full snapshot of every host 20 times a
    second, as this once did, cost Ferry's process more than some of its own stages.)"""
    user = await services.auth.user("admin")
    started = time.perf_counter()
    release = await services.releases.create(user, {
        "project": "bench", "ref": "main", "strategy": {"parallel": parallel}})
    await follow_release(services, release["id"])
    wall = time.perf_counter() - started
    return await services.releases.get(release["id"]), wall


def hosts_switched(manifest: dict, deploy_path: str, release: str) -> int:
    good = 0
    for host in manifest["hosts"]:
        link = Path(host["root"]) / "srv" / deploy_path.removeprefix("/srv/") / "current"
        try:
            if os.readlink(link) == f"releases/{release}" and (link / "VERSION").is_file():
                good += 1
        except OSError:
            pass
    return good


class HostLogs:
    """Exec requests and connections the OpenSSH hosts logged since the last look."""

    def __init__(self, manifest: dict) -> None:
        self.paths = [Path(h["log"]) for h in manifest["hosts"] if h.get("log")]
        self.offsets = [p.stat().st_size if p.exists() else 0 for p in self.paths]
        commands = Path(manifest["hosts"][0]["root"]) / "home" / ".fleet-commands"
        self.commands_path, self.commands_offset = commands, self._size(commands)

    @staticmethod
    def _size(path: Path) -> int:
        return path.stat().st_size if path.exists() else 0

    def take(self) -> dict:
        if not self.paths:
            return {}
        execs = connections = 0
        for i, path in enumerate(self.paths):
            with open(path, "rb") as log:
                log.seek(self.offsets[i])
                data = log.read()
            self.offsets[i] += len(data)
            execs += len(_EXEC.findall(data))
            connections += len(_CONNECTION.findall(data))
        found = {"execs_per_host": round(execs / len(self.paths), 2),
                 "connections_per_host": round(connections / len(self.paths), 2)}
        if self.commands_path.exists():
            with open(self.commands_path, "rb") as noted:
                noted.seek(self.commands_offset)
                data = noted.read()
            self.commands_offset += len(data)
            found["host0_commands"] = [c.decode(errors="replace")
                                       for c in data.split(b"\0")[:-1]]
        return found


def _children_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (usage.ru_utime + usage.ru_stime) * 1000


def _self_cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


async def ferry_round(setup: BenchSetup, logs: HostLogs, parallel: int) -> dict:
    fleet, hosts = setup.fleet, len(setup.manifest["hosts"])
    baseline = fleet.process_count()
    db_pid = setup.database.process.pid
    fleet_before = fleet.cpu_ms()
    own_before, children_before = _self_cpu_ms(), _children_cpu_ms()
    db_before = process_cpu_ms(db_pid)
    release, wall = await ferry_deploy(setup.services, parallel)
    own, children = _self_cpu_ms() - own_before, _children_cpu_ms() - children_before
    db = process_cpu_ms(db_pid) - db_before
    await fleet.settle(baseline)
    fleet_ms = fleet.cpu_ms() - fleet_before
    return {"release": release, "wall_s": wall, "fleet_cpu_ms": fleet_ms,
            "controller_cpu_ms": own + children + db, "process_cpu_ms": own,
            "git_cpu_ms": children, "db_cpu_ms": db,
            "ok": hosts_switched(setup.manifest, "/srv/bench", str(release["id"])),
            "stage_ms": stage_medians(release), **logs.take(), "hosts": hosts}


async def reference_round(setup: BenchSetup, logs: HostLogs, artifact: Path, parallel: int,
                          release: int) -> dict:
    fleet = setup.fleet
    baseline = fleet.process_count()
    fleet_before = fleet.cpu_ms()
    result = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "bench.reference_asyncssh", "--manifest",
        str(fleet.manifest_path), "--artifact", str(artifact), "--parallel", str(parallel),
        "--release", str(release)], cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        print(result.stdout[-4000:], result.stderr[-4000:], sep="\n", file=sys.stderr)
        result.check_returncode()
    await fleet.settle(baseline)
    fleet_ms = fleet.cpu_ms() - fleet_before
    *problems, last = result.stdout.strip().splitlines()
    for line in problems[:10]:
        print(f"reference: {line}", file=sys.stderr)
    figures = json.loads(last)
    return {**figures, "fleet_cpu_ms": fleet_ms, "controller_cpu_ms": figures["cpu_ms"],
            **logs.take()}


def stage_medians(release: dict) -> dict:
    """Median duration of each host stage that ran, over the hosts, in ms."""
    durations: dict[str, list[int]] = {}
    for run in release.get("host_runs") or []:
        for name, stage in (run.get("stages") or {}).items():
            if stage.get("state") == "ok" and stage.get("duration_ms") is not None:
                durations.setdefault(name, []).append(stage["duration_ms"])
    return {name: statistics.median(values) for name, values in durations.items()}


def _median(rounds: list[dict], key: str, hosts: int = 1) -> float:
    return round(statistics.median(r[key] for r in rounds) / hosts, 2)


async def main(args: argparse.Namespace) -> dict:
    async with bench_setup(args.hosts, admin_password="bench-password",
                           fleet_kind=args.fleet, fleet_nice=args.fleet_nice,
                           log_commands=args.log_commands,
                           **({} if args.ssh_handshakes_max is None
                              else {"ssh_handshakes_max": args.ssh_handshakes_max})) as setup:
        services, root = setup.services, setup.root
        await asyncio.to_thread(make_repo, root / "repo", args.artifact_mb)
        await services.projects.create({
            "name": "bench", "repo_url": f"file://{root / 'repo'}",
            "deploy_path": "/srv/bench", "groups": ["bench"], "keep_releases": KEEP,
            "health_check": {"command": HEALTH}})
        logs = HostLogs(setup.manifest)
        ferry, reference = [], []
        for round_ in range(args.repeat):
            if round_:
                await asyncio.to_thread(commit_payload, root / "repo", args.artifact_mb,
                                        f"bench {round_}")
            ferry.append(await ferry_round(setup, logs, args.parallel))
            release = ferry[-1]["release"]
            artifact = services.artifacts.cached(await services.projects.get("bench"),
                                                 release["sha"])
            reference.append(await reference_round(setup, logs, artifact.path, args.parallel,
                                                   round_ + 1))
            for run in ferry[-1]["release"].get("host_runs") or []:
                if run.get("state") != "ok":
                    print(f"ferry: {run['host']}: {run.get('state')}: {run.get('reason')}",
                          file=sys.stderr, flush=True)
            print(f"round {round_ + 1}: ferry {ferry[-1]['wall_s']:.1f} s, "
                  f"{ferry[-1]['ok']} hosts ok, fleet "
                  f"{ferry[-1]['fleet_cpu_ms'] / args.hosts:.1f} ms/host; reference "
                  f"{reference[-1]['wall_s']:.1f} s, {reference[-1]['hosts_ok']} hosts ok, "
                  f"fleet {reference[-1]['fleet_cpu_ms'] / args.hosts:.1f} ms/host",
                  file=sys.stderr, flush=True)
        rss_mb = peak_rss_mb()
        db_rss_mb = process_peak_rss_mb(setup.database.process.pid)
        version = setup.manifest.get("version")
        cpu_source = setup.fleet.cpu_source()
    n = args.hosts
    wall, ref_wall = _median(ferry, "wall_s"), _median(reference, "wall_s")
    fleet_cpu, ref_fleet_cpu = _median(ferry, "fleet_cpu_ms", n), _median(
        reference, "fleet_cpu_ms", n)
    figures = {
        "hosts": n, "hosts_ok": min(r["ok"] for r in ferry), "wall_s": round(wall, 3),
        "reference_wall_s": round(ref_wall, 3), "ratio": round(wall / ref_wall, 3),
        "per_host_ms": round(wall * 1000 / n, 2),
        "fleet_cpu_ms_per_host": fleet_cpu, "reference_fleet_cpu_ms_per_host": ref_fleet_cpu,
        "fleet_cpu_ratio": round(fleet_cpu / ref_fleet_cpu, 3) if ref_fleet_cpu else None,
        "controller_cpu_ms_per_host": _median(ferry, "controller_cpu_ms", n),
        "reference_controller_cpu_ms_per_host": _median(reference, "controller_cpu_ms", n),
        "controller_split_ms_per_host": {
            key: _median(ferry, f"{key}_cpu_ms", n) for key in ("process", "git", "db")},
        "rss_mb": round(rss_mb, 1), "db_rss_mb": round(db_rss_mb, 1),
        "reference_hosts_ok": min(r["hosts_ok"] for r in reference),
        "reference_rss_mb": max(r["rss_mb"] for r in reference),
        "execs_per_host": ferry[-1].get("execs_per_host"),
        "reference_execs_per_host": reference[-1].get("execs_per_host"),
        "connections_per_host": ferry[-1].get("connections_per_host"),
        "reference_connections_per_host": reference[-1].get("connections_per_host"),
        "stage_ms_median": ferry[-1]["stage_ms"],
        "rounds": [{"wall_s": round(f["wall_s"], 3), "reference_wall_s": r["wall_s"],
                    "fleet_cpu_ms_per_host": round(f["fleet_cpu_ms"] / n, 2),
                    "reference_fleet_cpu_ms_per_host": round(r["fleet_cpu_ms"] / n, 2),
                    "controller_cpu_ms_per_host": round(f["controller_cpu_ms"] / n, 2),
                    "reference_controller_cpu_ms_per_host": round(r["controller_cpu_ms"] / n,
                                                                  2)}
                   for f, r in zip(ferry, reference, strict=True)],
        "fleet": args.fleet, "sshd": version, "fleet_cpu_source": cpu_source,
        "parallel": args.parallel, "artifact_mb": args.artifact_mb, "repeat": args.repeat,
        "state": ferry[-1]["release"]["state"]}
    if args.log_commands:
        figures["host0_commands"] = {"ferry": ferry[-1].get("host0_commands"),
                                     "reference": reference[-1].get("host0_commands")}
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Ferry deploy benchmark")
    parser.add_argument("--fleet", choices=("openssh", "asyncssh"), default="openssh")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--artifact-mb", type=float, default=5)
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of Ferry then the reference; figures are medians")
    parser.add_argument("--fleet-nice", type=int, default=0)
    parser.add_argument("--ssh-handshakes-max", type=int, default=None,
                        help="Ferry's ssh_handshakes_max (default: the setting's default)")
    parser.add_argument("--log-commands", action="store_true",
                        help="OpenSSH hosts note every command (host0_commands); "
                             "one more exec per command, so not for measuring")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
