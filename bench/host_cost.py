"""What each exec request of a deploy costs an OpenSSH host, command by command.

    python -m bench.host_cost --artifact-mb 5 --samples 3

1. Records what Ferry and the reference run on a host: one deploy each on a one-host
   OpenSSH fleet whose user's shell notes every command (bench.deploy --log-commands).
2. Replays each side's commands, in order and over one connection, on fresh hosts of a
   second OpenSSH fleet (a plain one: bash is the shell), with the artifact on the stdin of
   the upload command (64 KiB chunks, as Ferry sends it), one at a time, and reads the
   fleet's cgroup CPU after each. The CPU of one exec request is everything the host
   spent on it: sshd's session, the shell and every process the command started.
3. Also measures one connection (connect, key exchange, authentication, disconnect) and
   one exec of `true` (the fixed cost of any exec request).

Final line: JSON {"ferry": [{"stage", "cpu_ms", "command"}...], "reference": [...],
"connection_cpu_ms", "exec_true_cpu_ms", "ferry_total_cpu_ms", "reference_total_cpu_ms"}.
Medians over `--samples` replays, each on its own fresh host.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
from pathlib import Path

import asyncssh

from bench.deploy import HEALTH, HostLogs, ferry_round, reference_round
from bench.harness import BenchSetup, bench_setup, make_repo
from fleet import openssh

KEEP = 3
CHUNK = 64 * 1024
READS_ARTIFACT = ("cat >", "tee --")  # a command with these reads the artifact on stdin


def stage_of(command: str) -> str:
    """Which stages a command does, from its text (one exec may do several)."""
    parts = [name for name, marks in (
        ("check", ("echo present", "echo absent")), ("mkdir", ("mkdir -p",)),
        ("upload", READS_ARTIFACT), ("sha256", ("sha256sum",)), ("extract", ("tar -x",)),
        ("switch", ("ln -sfn",)), ("health check", ("FERRY_STAGE=verify", "test -s")),
        ("prune", ("pruned", "xargs -r rm"))) if any(mark in command for mark in marks)]
    return " + ".join(parts) or "other"


async def record(artifact_mb: float) -> tuple[list[str], list[str], Path, Path]:
    """Ferry's and the reference's commands on a one-host fleet, and the artifact."""
    async with bench_setup(1, admin_password="bench-password", fleet_kind="openssh",
                           log_commands=True) as setup:
        await setup_project(setup, artifact_mb, HEALTH)
        logs = HostLogs(setup.manifest)
        ferry = await ferry_round(setup, logs, 1)
        project = await setup.services.projects.get("bench")
        artifact = setup.services.artifacts.cached(project, ferry["release"]["sha"]).path
        reference = await reference_round(setup, logs, artifact, 1, 1)
        keep = Path(tempfile.mkdtemp(prefix="ferry-host-cost-")) / "app.tar.gz"
        keep.write_bytes(artifact.read_bytes())
        return ferry["host0_commands"], reference["host0_commands"], keep, keep.parent


async def setup_project(setup: BenchSetup, artifact_mb: float, health: str) -> None:
    await asyncio.to_thread(make_repo, setup.root / "repo", artifact_mb)
    await setup.services.projects.create({
        "name": "bench", "repo_url": f"file://{setup.root / 'repo'}",
        "deploy_path": "/srv/bench", "groups": ["bench"], "keep_releases": KEEP,
        "health_check": {"command": health}})


async def settled_cpu(fleet: openssh.Fleet, baseline: int) -> float:
    """The fleet's CPU once its only processes are the sshd masters again."""
    for _ in range(200):
        if fleet.cgroup is None or len(fleet.cgroup.pids()) <= baseline:
            break
        await asyncio.sleep(0.02)
    return fleet.cpu_ms()


async def replay(fleet: openssh.Fleet, index: int, commands: list[str],
                 artifact: Path) -> tuple[float, list[float]]:
    """(connection CPU, CPU of each command) on host `index`."""
    host, baseline = fleet.hosts[index], len(fleet.hosts)
    known = asyncssh.import_known_hosts(fleet.known_hosts_text())
    before = await settled_cpu(fleet, baseline)
    conn = await asyncssh.connect(host.address, host.port, username=fleet.user,
                                  client_keys=[str(fleet.client_key_path)], known_hosts=known,
                                  encoding=None)
    await asyncio.sleep(0.2)
    connected = len(fleet.cgroup.pids()) if fleet.cgroup else baseline
    costs = []
    try:
        for command in commands:
            start = await settled_cpu(fleet, connected)
            reads = any(mark in command for mark in READS_ARTIFACT)
            result = await run(conn, command, artifact if reads else None)
            if result.exit_status != 0:
                print(f"{host.name}: status {result.exit_status} for {command[:80]!r}: "
                      f"{result.stderr[-300:]!r}", file=sys.stderr)
            costs.append(await settled_cpu(fleet, connected) - start)
    finally:
        conn.close()
        await conn.wait_closed()
    after_close = await settled_cpu(fleet, baseline)
    return after_close - before - sum(costs), costs


async def run(conn: asyncssh.SSHClientConnection, command: str,
              artifact: Path | None) -> asyncssh.SSHCompletedProcess:
    """Run `command`; stream `artifact` into its stdin in 64 KiB chunks, as Ferry does
    (a steady stream, so the host's cost does not depend on how the client happened to
    slice it)."""
    async with conn.create_process(command, encoding=None) as process:
        if artifact is not None:
            with open(artifact, "rb") as source:
                while chunk := source.read(CHUNK):
                    process.stdin.write(chunk)
                    await process.stdin.drain()
        process.stdin.write_eof()
        return await process.wait()


async def main(args: argparse.Namespace) -> dict:
    ferry_cmds, ref_cmds, artifact, keep_dir = await record(args.artifact_mb)
    samples = args.samples
    with tempfile.TemporaryDirectory(prefix="ferry-host-cost-") as tmp:
        async with openssh.Fleet(Path(tmp), 3 * samples, name_prefix="cost") as fleet:
            if fleet.cgroup is None:
                sys.exit("bench.host_cost needs a writable cgroup v2 mount (to count the CPU "
                         "of each exec request exactly)")
            ferry_runs, ref_runs, true_runs, conns = [], [], [], []
            for i in range(samples):
                conn, costs = await replay(fleet, 3 * i, ferry_cmds, artifact)
                ferry_runs.append(costs)
                conns.append(conn)
                conn, costs = await replay(fleet, 3 * i + 1, ref_cmds, artifact)
                ref_runs.append(costs)
                conns.append(conn)
                _, costs = await replay(fleet, 3 * i + 2, ["true"] * 5, artifact)
                true_runs.extend(costs)
            version = fleet.version
    artifact.unlink()
    keep_dir.rmdir()

    def table(commands: list[str], runs: list[list[float]]) -> list[dict]:
        return [{"stage": stage_of(c), "cpu_ms": round(statistics.median(r[i] for r in runs), 2),
                 "command": c if args.full_commands else c[:160]}
                for i, c in enumerate(commands)]

    ferry, reference = table(ferry_cmds, ferry_runs), table(ref_cmds, ref_runs)
    return {"sshd": version, "artifact_mb": args.artifact_mb, "samples": samples,
            "connection_cpu_ms": round(statistics.median(conns), 2),
            "exec_true_cpu_ms": round(statistics.median(true_runs), 2),
            "ferry_execs": len(ferry), "reference_execs": len(reference),
            "ferry_total_cpu_ms": round(sum(s["cpu_ms"] for s in ferry), 2),
            "reference_total_cpu_ms": round(sum(s["cpu_ms"] for s in reference), 2),
            "ferry": ferry, "reference": reference}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artifact-mb", type=float, default=5)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--full-commands", action="store_true")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
