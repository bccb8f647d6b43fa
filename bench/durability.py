"""Durability of the embedded database, and what it costs on Ferry's own writes.

    python -m bench.durability --runs 3

Three ways of starting the embedded database (all through services/embedded_db.py, on a
fresh data directory on disk each run):
- `none`: SecantusDB's default, what Ferry ran before (journal buffered, not synced);
- `sync`: `sync_on_commit = true` in db.toml, every commit syncs the journal (Ferry's);
- `journal`: the default server, with `j: true` on every write (`journal=true` in the URL).

Each run, per mode:
1. loss: `--kill-writes` acknowledged insert_one, SIGKILL of the database right after the
   last acknowledgement, a restart on the same storage, and a count of what is there;
2. Ferry's write pattern through Ferry's own code (Services, ReleaseRecord, the event
   bus, the lease updates of ReleaseService.renew_leases): `--states` release state
   changes, `--batches` flushes of `--lines` log lines (over 10 hosts, with their
   events), `--renewals` lease renewals, then closing (every event stored);
3. raw rates: `--raw-writes` insert_one (1,000), and 10 insert_many of half as many.
Final line: JSON {"modes": {mode: {"runs": [...], "median": {...}}}}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from pymongo import AsyncMongoClient

from services import Services
from services.embedded_db import EmbeddedDatabase
from services.releases.records import ReleaseRecord, new_host_run
from services.settings import Settings
from services.store import Store, utcnow

MODES = ("none", "sync", "journal")
HOSTS = [f"web-{n:02d}" for n in range(10)]


def database(mode: str, folder: Path) -> EmbeddedDatabase:
    return EmbeddedDatabase(folder / "db", home=folder, sync_on_commit=mode == "sync",
                            journal=mode == "journal")


async def loss(mode: str, folder: Path, writes: int) -> dict:
    """Acknowledged inserts, SIGKILL, restart: how many are there."""
    first = database(mode, folder)
    await first.start()
    client = AsyncMongoClient(first.url)
    acked = 0
    for n in range(writes):
        await client.bench.acked.insert_one({"_id": n, "pad": "x" * 100})
        acked += 1
    os.kill(first.process.pid, signal.SIGKILL)
    await first.process.wait()
    first.process = None
    await client.close()
    again = database(mode, folder)
    await again.start()
    client = AsyncMongoClient(again.url)
    found = await client.bench.acked.count_documents({})
    await client.close()
    await again.stop()
    return {"acked": acked, "found": found, "lost": acked - found}


async def ferry_pattern(url: str, folder: Path, args: argparse.Namespace) -> dict:
    """Release state changes, flushed log batches and lease renewals, as Ferry writes them."""
    settings = Settings(data_dir=folder / "data", mongo_url=url, cookie_secret="bench",
                        instance_id="bench")   # shared: recovery leaves release 1 alone
    services = Services(settings, Store(url, settings.db_name))
    await services.open()
    now = utcnow()
    release = {"_id": 1, "project": "bench", "environment": "production", "kind": "deploy",
               "ref": "main", "sha": "0" * 40, "state": "pending", "hosts": HOSTS,
               "created_by": "bench", "created_at": now, "started_at": None, "local": {},
               "owner": "bench", "counts": {"pending": len(HOSTS)}}
    runs = {host: new_host_run(1, host, 1) for host in HOSTS}
    await services.store.releases.insert_one(release)
    await services.store.host_runs.insert_many(list(runs.values()))
    await services.store.leases.insert_one({"_id": "deploy:bench:production", "release_id": 1,
                                            "owner": "bench", "expires_at": now})
    record = ReleaseRecord(services.store, services.events, release, runs, settings)
    record.start()
    figures = {}
    started = time.perf_counter()
    for n in range(args.states):
        await record.set_state("running" if n % 2 else "paused")
    figures["state_change_ms"] = 1000 * (time.perf_counter() - started) / args.states
    started = time.perf_counter()
    for batch in range(args.batches):
        for n in range(args.lines):
            host = HOSTS[n % len(HOSTS)]
            record.log(host, "after_release", f"batch {batch} line {n}: restarting worker {n}")
        record.host_state(HOSTS[batch % len(HOSTS)], "running")
        await record.flush()
    figures["log_lines_per_s"] = args.batches * args.lines / (time.perf_counter() - started)
    started = time.perf_counter()
    for _ in range(args.renewals):
        expires = utcnow() + timedelta(seconds=30)
        await services.store.releases.update_many(
            {"_id": {"$in": [1]}, "owner": "bench"}, {"$set": {"lease_expires_at": expires}})
        await services.store.leases.update_many(
            {"release_id": {"$in": [1]}, "owner": "bench"}, {"$set": {"expires_at": expires}})
    figures["renewal_ms"] = 1000 * (time.perf_counter() - started) / args.renewals
    started = time.perf_counter()
    await record.close()
    await services.close()
    figures["close_s"] = time.perf_counter() - started
    return figures


async def raw_rates(url: str, writes: int) -> dict:
    """`writes` insert_one, then 10 insert_many of `writes / 2` documents."""
    client = AsyncMongoClient(url)
    started = time.perf_counter()
    for n in range(writes):
        await client.bench.one.insert_one({"_id": n, "pad": "x" * 100})
    one = writes / (time.perf_counter() - started)
    size = max(1, writes // 2)
    started = time.perf_counter()
    for batch in range(10):
        await client.bench.many.insert_many(
            [{"_id": batch * size + n, "pad": "x" * 100} for n in range(size)])
    many = 10 * size / (time.perf_counter() - started)
    await client.close()
    return {"insert_one_per_s": one, "insert_many_docs_per_s": many}


async def one_run(mode: str, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-durability-", dir=args.dir) as tmp:
        folder = Path(tmp)
        result = await loss(mode, folder / "loss", args.kill_writes)
        async with database(mode, folder / "pattern") as db:
            started = time.perf_counter()
            result.update(await ferry_pattern(db.url, folder / "pattern", args))
            result["pattern_s"] = time.perf_counter() - started
            result.update(await raw_rates(db.url, args.raw_writes))
        return result


async def main(args: argparse.Namespace) -> dict:
    report = {"machine": f"{os.cpu_count()} CPU, {platform.platform()}", "modes": {}}
    modes = args.modes.split(",")
    runs: dict[str, list[dict]] = {mode: [] for mode in modes}
    for _ in range(args.runs):       # modes take turns, so a busy minute hits each alike
        for mode in modes:
            runs[mode].append(await one_run(mode, args))
            print(mode, json.dumps(runs[mode][-1]), flush=True)
    for mode in modes:
        median = {key: round(statistics.median(run[key] for run in runs[mode]), 2)
                  for key in runs[mode][0] if key not in ("acked", "found")}
        report["modes"][mode] = {"runs": runs[mode], "median": median,
                                 "lost": [run["lost"] for run in runs[mode]]}
    report["load_average"] = os.getloadavg()
    return report


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--kill-writes", type=int, default=1000)
    parser.add_argument("--states", type=int, default=200)
    parser.add_argument("--batches", type=int, default=50)
    parser.add_argument("--lines", type=int, default=500)
    parser.add_argument("--renewals", type=int, default=200)
    parser.add_argument("--raw-writes", type=int, default=1000)
    parser.add_argument("--dir", default=None, help="where the data directories go (a disk)")
    return parser.parse_args()


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args())), default=str))
