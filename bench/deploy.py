"""Deploy benchmark: Ferry's engine against a minimal asyncssh script on the same fleet.

    python -m bench.deploy --hosts 200 --parallel 100 --artifact-mb 5

Starts a fleet of real SSH servers (a separate process), the embedded database, and Ferry's
services in this process; deploys a commit carrying M MiB of incompressible data to every
host; checks every host's `current`; then runs bench/reference_asyncssh.py (its own
process) on the same fleet. Final line: JSON {"hosts", "hosts_ok", "wall_s",
"reference_wall_s", "ratio", "per_host_ms", "rss_mb", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import ROOT, ferry_on_fleet, make_repo, peak_rss_mb
from services import Services

TERMINAL = ("succeeded", "failed", "cancelled", "rolled_back", "interrupted")


async def ferry_deploy(services: Services, parallel: int) -> tuple[dict, float]:
    user = await services.auth.user("admin")
    started = time.perf_counter()
    release = await services.releases.create(user, {
        "project": "bench", "ref": "main", "strategy": {"parallel": parallel}})
    while True:
        current = await services.releases.get(release["id"])
        if current["state"] in TERMINAL:
            return current, time.perf_counter() - started
        await asyncio.sleep(0.05)


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


def run_reference(manifest_path: Path, artifact: Path, parallel: int) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "bench.reference_asyncssh", "--manifest", str(manifest_path),
         "--artifact", str(artifact), "--parallel", str(parallel)],
        cwd=ROOT, capture_output=True, text=True, check=True)
    *problems, last = result.stdout.strip().splitlines()
    for line in problems[:10]:
        print(f"reference: {line}", file=sys.stderr)
    return json.loads(last)


async def main(args: argparse.Namespace) -> dict:
    async with ferry_on_fleet(args.hosts, admin_password="bench-password") as (
            services, root, manifest):
        make_repo(root / "repo", args.artifact_mb)
        await services.projects.create({
            "name": "bench", "repo_url": f"file://{root / 'repo'}",
            "deploy_path": "/srv/bench", "groups": ["bench"]})
        release, wall = await ferry_deploy(services, args.parallel)
        artifact = services.artifacts.cached(await services.projects.get("bench"),
                                             release["sha"])
        rss_mb = peak_rss_mb()
        ok = hosts_switched(manifest, "/srv/bench", str(release["id"]))
        reference = run_reference(root / "fleet.json", artifact.path, args.parallel)
    return {"hosts": args.hosts, "hosts_ok": ok, "wall_s": round(wall, 3),
            "reference_wall_s": reference["wall_s"],
            "ratio": round(wall / reference["wall_s"], 3),
            "per_host_ms": round(wall * 1000 / args.hosts, 2), "rss_mb": round(rss_mb, 1),
            "reference_hosts_ok": reference["hosts_ok"], "reference_rss_mb": reference["rss_mb"],
            "parallel": args.parallel, "artifact_mb": args.artifact_mb,
            "artifact_bytes": artifact.size, "state": release["state"]}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Ferry deploy benchmark")
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--artifact-mb", type=float, default=5)
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
