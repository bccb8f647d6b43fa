"""What a release record writes to the database (records.py): each change once, nothing it
has already stored again, so a large release costs the database few documents per host."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from services.releases.records import ReleaseRecord, new_host_run
from services.store import utcnow

RELEASE = 8
HOSTS = ("web-1", "web-2")


async def stored_record(services, **settings) -> ReleaseRecord:
    """A release and its host runs as ReleaseService stores them, and its record (with
    `settings` changed)."""
    release = {"_id": RELEASE, "project": "app", "environment": "production",
               "kind": "deploy", "ref": "v1", "sha": None, "state": "running",
               "created_at": utcnow(), "local": {}, "counts": {"pending": len(HOSTS)}}
    runs = {host: new_host_run(RELEASE, host, 1) for host in HOSTS}
    await services.store.releases.insert_one(release)
    await services.store.host_runs.insert_many(list(runs.values()))
    return ReleaseRecord(services.store, services.events, release, runs,
                         services.settings.replace(**settings), stored=True)


@contextlib.asynccontextmanager
async def running_record(services, **settings) -> AsyncIterator[ReleaseRecord]:
    """stored_record, started (its flush and publish loops run), closed at the end."""
    record = await stored_record(services, **settings)
    record.start()
    try:
        yield record
    finally:
        await record.close()


async def mark(services, collection: str, _id, **fields) -> None:
    """Change a stored document behind the record's back: a rewrite would undo it."""
    await services.store.db[collection].update_one({"_id": _id}, {"$set": fields})


async def test_a_flush_writes_only_the_host_runs_that_changed_since_they_were_stored(services):
    record = await stored_record(services)
    await mark(services, "host_runs", f"{RELEASE}:web-2", reason="untouched")
    record.host_state("web-1", "running")
    await record.flush()
    runs = {run["host"]: run async for run in services.store.host_runs.find(
        {"release_id": RELEASE})}
    assert runs["web-1"]["state"] == "running"
    assert runs["web-2"]["reason"] == "untouched"


async def test_the_release_document_is_written_again_only_when_its_counts_or_stages_change(
        services):
    record = await stored_record(services)
    record.host_state("web-1", "running")
    await record.flush()
    release = await services.store.releases.find_one({"_id": RELEASE})
    assert release["counts"]["running"] == 1
    await mark(services, "releases", RELEASE, reason="untouched")
    record.stage_start("web-1", "upload")          # the counts stay as they are
    await record.flush()
    assert (await services.store.releases.find_one({"_id": RELEASE}))["reason"] == "untouched"
    record.host_state("web-1", "ok")               # they change: written
    await record.flush()
    release = await services.store.releases.find_one({"_id": RELEASE})
    assert release["counts"]["ok"] == 1 and release["counts"]["running"] == 0
    record.local_stage("package", "ok", duration_ms=5)   # a local stage: written
    await record.flush()
    release = await services.store.releases.find_one({"_id": RELEASE})
    assert release["local"]["package"]["state"] == "ok"


async def test_a_release_is_stored_as_ended_only_after_its_host_runs(services):
    record = await stored_record(services)
    record.host_state("web-1", "ok")
    record.host_state("web-2", "skipped", reason="release cancelled")
    await record.set_state("cancelled", reason="cancelled by a user")
    runs = {run["host"]: run["state"] async for run in services.store.host_runs.find(
        {"release_id": RELEASE})}
    assert runs == {"web-1": "ok", "web-2": "skipped"}
    assert (await services.store.releases.find_one({"_id": RELEASE}))["state"] == "cancelled"


async def stored_run(services, host: str) -> dict:
    return await services.store.host_runs.find_one({"_id": f"{RELEASE}:{host}"})


async def until_stored(services, host: str, test, timeout: float = 10.0) -> dict:
    """Poll the stored host run until `test(run)` holds; the run."""
    deadline = time.monotonic() + timeout
    while not test(run := await stored_run(services, host)):
        assert time.monotonic() < deadline, f"{host}'s host run never got there: {run}"
        await asyncio.sleep(0.02)
    return run


async def test_stage_progress_is_not_rewritten_before_the_progress_interval(services):
    async with running_record(services, host_progress_write_interval_s=600) as record:
        record.host_state("web-1", "running")
        await until_stored(services, "web-1", lambda run: run["state"] == "running")
        record.stage_start("web-1", "upload")
        record.stage_end("web-1", "upload", "ok", 5)
        record.host_state("web-2", "running")      # a later change, flushed since
        await until_stored(services, "web-2", lambda run: run["state"] == "running")
        assert (await stored_run(services, "web-1"))["stages"] == {}


async def test_stage_progress_rides_along_with_the_hosts_next_state_change(services):
    async with running_record(services, host_progress_write_interval_s=600) as record:
        record.host_state("web-1", "running")
        record.stage_start("web-1", "upload")
        await until_stored(services, "web-1", lambda run: run["state"] == "running")
        record.stage_end("web-1", "upload", "ok", 5)
        record.host_state("web-1", "failed", reason="extract: no space left")
        run = await until_stored(services, "web-1", lambda run: run["state"] == "failed")
        assert run["stages"]["upload"]["state"] == "ok"


async def test_the_switch_beginning_is_written_at_the_next_flush(services):
    async with running_record(services, host_progress_write_interval_s=600) as record:
        record.host_state("web-1", "running")
        await until_stored(services, "web-1", lambda run: run["state"] == "running")
        record.stage_start("web-1", "release")     # `current` may move from here on
        await until_stored(services, "web-1", lambda run: (
            run["stages"].get("release", {}).get("state") == "running"))


async def test_stage_progress_is_written_once_the_progress_interval_has_passed(services):
    async with running_record(services, host_progress_write_interval_s=0.3) as record:
        record.host_state("web-1", "running")
        record.stage_start("web-1", "before_release")    # a long hook: no state change
        await until_stored(services, "web-1", lambda run: (
            run["stages"].get("before_release", {}).get("state") == "running"))


async def test_closing_the_record_writes_all_the_progress_held_back(services):
    record = await stored_record(services, host_progress_write_interval_s=600)
    record.start()
    record.host_state("web-1", "running")
    await until_stored(services, "web-1", lambda run: run["state"] == "running")
    record.stage_start("web-1", "upload")
    await record.close()
    assert (await stored_run(services, "web-1"))["stages"]["upload"]["state"] == "running"


async def test_a_host_change_reaches_the_wall_even_when_the_release_then_goes_quiet(services):
    async with running_record(services) as record:
        after = await services.events.head("wall")
        record.host_state("web-1", "running")
        after = await wall_shows(services, after, ["running", None])
        record.stage_start("web-1", "before_release")   # within the wall's interval,
        await wall_shows(services, after, ["running", "before_release"])  # then quiet


async def wall_shows(services, after: int, tile: list) -> int:
    """Follow the `wall` topic until web-1 shows as `tile`; the seq it did at."""
    while True:
        events = await services.events.wait("wall", after, 10)
        assert events, f"the wall never showed web-1 as {tile}"
        after = events[-1]["seq"]
        if any(event["data"]["hosts"].get("web-1") == tile for event in events):
            return after
