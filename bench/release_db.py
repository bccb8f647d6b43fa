"""What a release costs the embedded database: commands, documents and CPU per host.

    python -m bench.release_db --hosts 2000 [--releases 2] [--parallel 100]

Starts a fleet, the embedded database and Ferry's services as bench.wall does (the
simulator, 8 racks, a before_release hook of `--hook-sleep` seconds, `--parallel` hosts
at a time), without a browser, and runs `--releases` releases to every host, one after
the other. For each it counts the commands Ferry's database client sends (pymongo's
command monitor), by command and collection, with the documents they carry (an insert's
documents, an update's statements), and the database process's CPU; all per host. The
bench follows each release through the event bus, as a watching page does, so it adds
hardly a command of its own (one read of the release after a quiet second).

Reference, in the same run: the same releases with `host_progress_write_interval_s` 0
and `exclusive_db` off (`every_change`): every change of a host run written at the next
flush and a change stream open for other instances' events, as Ferry ran its embedded
database before it held stage progress back and dropped that stream. Each side gets its
own fleet and database, the reference first.
Final line: JSON {"hosts", "ferry": {...}, "every_change": {...}, "db_cpu_ratio"}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections import Counter

from pymongo import monitoring

from bench.harness import bench_setup, follow_release
from bench.wall import PASSWORD, start_release, wall_project
from fleet.cpuacct import process_cpu_ms
from services import Services

SIDES = {"every_change": {"host_progress_write_interval_s": 0.0, "exclusive_db": False},
         "ferry": {}}
SSH_TIMEOUT_S = 60.0


class CommandCount(monitoring.CommandListener):
    """Commands and the documents they carry, by `command:collection`, while counting."""

    def __init__(self) -> None:
        self.commands: Counter[str] = Counter()
        self.documents: Counter[str] = Counter()
        self.counting = False

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.counting:
            return
        command = event.command
        collection = command.get(event.command_name)
        key = (f"{event.command_name}:{collection}" if isinstance(collection, str)
               else event.command_name)
        self.commands[key] += 1
        carried = command.get("documents") or command.get("updates") or command.get("deletes")
        self.documents[key] += len(carried) if carried else 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def one_release(services: Services, args: argparse.Namespace, count: CommandCount,
                      database_pid: int) -> dict:
    count.commands.clear()
    count.documents.clear()
    cpu_before = process_cpu_ms(database_pid)
    started = time.perf_counter()
    count.counting = True
    release = await start_release(services, args)
    # Its task, taken now: the run leaves `runs` before its last writes (each host's
    # last release in the registry), which this counts too.
    entry = services.releases.runs.get(release["id"])
    await follow_release(services, release["id"])
    if entry is not None:
        await asyncio.wait([entry[1]], timeout=60)
    count.counting = False
    cpu_ms = process_cpu_ms(database_pid) - cpu_before
    stored = await services.store.releases.find_one({"_id": release["id"]}, {"counts": 1})
    per_host = args.hosts
    return {"release_s": round(time.perf_counter() - started, 1),
            "hosts_ok": stored["counts"].get("ok", 0),
            "db_cpu_ms_per_host": round(cpu_ms / per_host, 1),
            "documents_per_host": {key: round(n / per_host, 2)
                                   for key, n in count.documents.most_common() if n},
            "commands_per_host": {key: round(n / per_host, 2)
                                  for key, n in count.commands.most_common() if n}}


async def side(name: str, args: argparse.Namespace, count: CommandCount) -> dict:
    async with bench_setup(args.hosts, admin_password=PASSWORD, fleet_nice=args.fleet_nice,
                           fleet_own_session=True, ssh_connect_timeout_s=SSH_TIMEOUT_S,
                           ssh_login_timeout_s=SSH_TIMEOUT_S, **SIDES[name]) as setup:
        services = setup.services
        await wall_project(services, setup.root, args.hook_sleep)
        releases = [await one_release(services, args, count, setup.database.process.pid)
                    for _ in range(args.releases)]
    return {"settings": SIDES[name], "releases": releases,
            "db_cpu_ms_per_host": statistics.median(r["db_cpu_ms_per_host"] for r in releases),
            "documents_per_host": round(statistics.median(
                sum(r["documents_per_host"].values()) for r in releases), 2)}


async def main(args: argparse.Namespace) -> dict:
    count = CommandCount()
    monitoring.register(count)
    result = {name: await side(name, args, count) for name in SIDES}
    reference = result["every_change"]["db_cpu_ms_per_host"]
    return {"hosts": args.hosts, "parallel": args.parallel, "fleet_nice": args.fleet_nice,
            **result, "db_cpu_ratio": round(result["ferry"]["db_cpu_ms_per_host"]
                                            / reference, 2) if reference else None}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ferry: a release's cost to its database")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--releases", type=int, default=2)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--hook-sleep", type=float, default=1.0,
                        help="seconds each host's before_release hook sleeps")
    parser.add_argument("--fleet-nice", type=int, default=10)
    args = parser.parse_args(argv)
    for option in ("hosts", "releases", "parallel"):
        if getattr(args, option) < 1:
            parser.error(f"--{option} must be at least 1")
    return args


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args(sys.argv[1:])))), flush=True)
