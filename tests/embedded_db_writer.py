"""A Ferry that writes and then waits to be killed: `python -m tests.embedded_db_writer DIR`.

Starts the embedded database on DIR as server.py does, writes through Ferry's own code
(releases, their state changes, host runs, log lines, wall events; every write awaited,
so acknowledged), SIGKILLs the database the moment the last write is acknowledged (the
window in which an unsynced journal loses writes), prints one JSON line {"db_pid",
"wall_head"} and waits for the test to kill it: in its own process, so nothing of this
one's client is left to clean up in the test's."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path

from services import Services, embedded_db
from services.releases.records import ReleaseRecord, new_host_run
from services.settings import Settings
from services.store import Store, utcnow

HOSTS = [f"web-{n}" for n in range(4)]
RELEASES = 12         # 1..8 succeed one after the other; 9..12 run at once and are left
RUNNING = range(9, RELEASES + 1)   # running, two hosts done each
LINES = 60            # per host and release


def ferry_settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, cookie_secret="test-secret", exclusive_db=True,
                    instance_id=f"test-{uuid.uuid4().hex[:6]}", shutdown_grace_s=3)


async def open_services(settings: Settings, url: str) -> Services:
    settings = settings.replace(mongo_url=url)
    services = Services(settings, Store(url, settings.db_name))
    await services.open()
    return services


async def new_record(services: Services, release_id: int) -> ReleaseRecord:
    """A release as ReleaseService._start stores it, and its record."""
    release = {"_id": release_id, "project": "app", "environment": "production",
               "kind": "deploy", "ref": "main", "sha": "0" * 40, "state": "pending",
               "hosts": HOSTS, "created_by": "admin", "created_at": utcnow(),
               "started_at": None, "finished_at": None, "reason": None, "local": {},
               "owner": services.settings.instance_id, "counts": {"pending": len(HOSTS)}}
    runs = {host: new_host_run(release_id, host, 1) for host in HOSTS}
    await services.store.releases.insert_one(release)
    await services.store.host_runs.insert_many(list(runs.values()))
    return ReleaseRecord(services.store, services.events, release, runs, services.settings)


async def run_hosts(record: ReleaseRecord, finished_hosts: list[str]) -> None:
    """Hosts start, log, some finish; the release ends once all of them have."""
    for host in HOSTS:
        record.host_state(host, "running")
        for n in range(LINES):
            record.log(host, "after_release", f"{host} line {n}")
        if host in finished_hosts:
            record.host_state(host, "ok")
    await record.flush()
    if finished_hosts == HOSTS:
        await record.set_state("succeeded")


async def main(data_dir: Path) -> None:
    settings = ferry_settings(data_dir)
    database = embedded_db.for_settings(settings)
    services = await open_services(settings, await database.start())
    for release_id in range(1, RUNNING.start):
        record = await new_record(services, release_id)
        await record.set_state("running")
        await run_hosts(record, HOSTS)
    running = [await new_record(services, release_id) for release_id in RUNNING]
    for record in running:
        await record.set_state("running")
    wall_head = await services.events.head("wall")
    # As Ferry runs them: concurrently, so many writes are acknowledged at the very end.
    await asyncio.gather(*(run_hosts(record, HOSTS[:2]) for record in running))
    os.kill(database.process.pid, signal.SIGKILL)
    print(json.dumps({"db_pid": database.process.pid, "wall_head": wall_head}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
