"""The yardstick: a minimal asyncssh deploy doing the same host stages as Ferry
(mkdir, upload, sha256 check, extract, atomic switch, health check, prune) with asyncssh's
defaults: the artifact goes to `cat` on the host through asyncssh's own stdin redirection
from the file. Three exec requests per host: mkdir, upload, then one `&&` chain for the
rest, as a person writing a deploy script would.

    python -m bench.reference_asyncssh --manifest fleet.json --artifact app.tar.gz \
        --parallel 100 --deploy-path /srv/bench-ref --release 1

Prints a final JSON line {"hosts", "hosts_ok", "wall_s", "rss_mb", "cpu_ms"}.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import shlex
import time
from pathlib import Path

import asyncssh

from bench.harness import peak_rss_mb

KEEP = 3  # releases kept on a host, as the benchmark's project keeps


async def deploy_host(host: dict, user: str, key: str, known_hosts, artifact: str,
                      sha256: str, deploy_path: str, release: str) -> bool:
    q = shlex.quote
    target = f"{deploy_path}/releases/{release}"
    async with asyncssh.connect(host["address"], host["port"], username=user,
                                client_keys=[key], known_hosts=known_hosts,
                                encoding=None) as conn:
        await conn.run(f"mkdir -p {q(target)}", check=True)
        await conn.run(f"cat > {q(deploy_path)}/app.tar.gz", stdin=artifact, check=True)
        await conn.run(
            f"cd {q(deploy_path)} && echo {q(sha256)}' *app.tar.gz' | sha256sum -c --quiet && "
            f"tar -xzf app.tar.gz -C {q(target)} && "
            f"ln -sfn releases/{q(release)} current.tmp && mv -T current.tmp current && "
            f"test -s current/VERSION && cd releases && "
            f"ls -1 | sort -n | head -n -{KEEP} | xargs -r rm -rf --", check=True)
    return True


def switched(host: dict, deploy_path: str, release: str) -> bool:
    """The host's `current` points at the release, checked on its own filesystem."""
    link = Path(host["root"]) / "srv" / deploy_path.removeprefix("/srv/") / "current"
    try:
        return os.readlink(link) == f"releases/{release}" and (link / "VERSION").is_file()
    except OSError:
        return False


def _cpu_ms() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


async def main(args: argparse.Namespace) -> dict:
    """Deploys to every host. cpu_ms: this process's CPU from here on (after its imports
    and interpreter start-up, which a long-running deploy tool would not pay per deploy)."""
    cpu_started = _cpu_ms()
    with open(args.manifest) as handle:
        manifest = json.load(handle)
    known = asyncssh.import_known_hosts("\n".join(
        f"[{h['address']}]:{h['port']} {h['public_key']}" for h in manifest["hosts"]))
    with open(args.artifact, "rb") as handle:
        sha256 = hashlib.sha256(handle.read()).hexdigest()
    gate = asyncio.Semaphore(args.parallel)

    async def one(host: dict) -> bool:
        async with gate:
            try:
                return await deploy_host(host, manifest["user"], manifest["client_key"], known,
                                         args.artifact, sha256, args.deploy_path, args.release)
            except (OSError, asyncssh.Error) as error:
                print(f"{host['name']}: {error}", flush=True)
                return False

    started = time.perf_counter()
    results = await asyncio.gather(*(one(host) for host in manifest["hosts"]))
    wall = time.perf_counter() - started
    ok = sum(1 for host, done in zip(manifest["hosts"], results, strict=True)
             if done and switched(host, args.deploy_path, args.release))
    return {"hosts": len(results), "hosts_ok": ok, "wall_s": round(wall, 3),
            "rss_mb": round(peak_rss_mb(), 1),
            "cpu_ms": round(_cpu_ms() - cpu_started, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--artifact", required=True)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--deploy-path", default="/srv/bench-ref")
    parser.add_argument("--release", default="1")
    print(json.dumps(asyncio.run(main(parser.parse_args()))), flush=True)
