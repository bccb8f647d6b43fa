"""ReleaseService and the strategy at work, without HTTP: parallelism is never exceeded,
a pause waits for a promote, max_fail stops scheduling, cancel stops it, a release is
resolved once to a SHA, and starting one never waits for git."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest

from services import Services
from services.errors import Conflict, Invalid
from services.team.auth import User
from tests.deploykit import TERMINAL

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]
ADMIN = User("admin", "admin")


@pytest.fixture
async def fleet_project(services: Services, make_fleet, app_repo):
    """Six trusted simulator hosts in group web and a project `app` deploying to them."""
    fleet = await make_fleet(6)
    for host in fleet.hosts:
        await services.hosts.create({
            "name": host.name, "address": host.address, "port": host.port, "user": "deploy",
            "key_path": str(fleet.client_key_path), "groups": ["web"]})
        await services.hosts.trust(host.name, host.fingerprint)

    async def project(**fields) -> dict:
        body = {"name": "app", "repo_url": app_repo.url, "deploy_path": "/srv/app",
                "groups": ["web"], **fields}
        return await services.projects.create(body)

    return fleet, project


async def settle(services: Services, release_id: int, states=TERMINAL) -> dict:
    for _ in range(1800):
        release = await services.releases.get(release_id)
        if release["state"] in states:
            return release
        await asyncio.sleep(0.05)
    raise AssertionError(f"release {release_id} stayed {release['state']}")


def counted(release: dict) -> dict[str, int]:
    return {state: n for state, n in release["counts"].items() if n}


def most_at_once(host_runs: list[dict]) -> int:
    """The largest number of hosts whose runs overlapped in time."""
    edges = []
    for run in host_runs:
        if run.get("started_at") and run.get("finished_at"):
            edges += [(_time(run["started_at"]), 1), (_time(run["finished_at"]), -1)]
    running = peak = 0
    for _, step in sorted(edges, key=lambda edge: (edge[0], edge[1])):
        running += step
        peak = max(peak, running)
    return peak


def _time(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


async def test_no_more_hosts_run_at_once_than_parallel_allows(services, fleet_project):
    _, project = fleet_project
    await project(hooks={"before_release": "sleep 0.5"}, strategy={"parallel": 2})
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    release = await settle(services, started["id"])
    assert release["state"] == "succeeded", release
    assert most_at_once(release["host_runs"]) == 2


async def test_a_release_is_resolved_once_to_the_full_sha(services, fleet_project, app_repo):
    _, project = fleet_project
    await project()
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v2"})
    assert started["sha"] is None   # resolved by the run, not while starting it
    release = await settle(services, started["id"])
    assert release["sha"] == app_repo.shas["v2"]


async def test_a_canary_pauses_after_its_first_batch_until_promoted(services, fleet_project):
    _, project = fleet_project
    await project(strategy={"preset": "canary"})
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    paused = await settle(services, started["id"], ("paused", *TERMINAL))
    assert paused["state"] == "paused" and counted(paused) == {"ok": 1, "pending": 5}
    await services.releases.promote(started["id"])
    release = await settle(services, started["id"])
    assert release["state"] == "succeeded" and counted(release) == {"ok": 6}


async def test_promoting_a_release_that_is_not_paused_is_a_conflict(services, fleet_project):
    _, project = fleet_project
    await project()
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    await settle(services, started["id"])
    with pytest.raises(Conflict):
        await services.releases.promote(started["id"])


async def test_max_fail_stops_scheduling_new_hosts_once_exceeded(services, fleet_project):
    _, project = fleet_project
    await project(hooks={"before_release": "exit 3"},
                  strategy={"parallel": 1, "max_fail": 1})
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    release = await settle(services, started["id"])
    assert release["state"] == "failed" and "max_fail" in release["reason"], release
    assert counted(release) == {"failed": 2, "skipped": 4}, release["counts"]


async def test_cancel_stops_scheduling_and_ends_the_release_cancelled(services, fleet_project):
    _, project = fleet_project
    await project(hooks={"before_release": "sleep 20"}, strategy={"parallel": 2})
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    for _ in range(600):
        if (await services.releases.get(started["id"]))["counts"].get("running"):
            break
        await asyncio.sleep(0.05)
    await services.releases.cancel(started["id"])
    release = await settle(services, started["id"])
    assert release["state"] == "cancelled"
    assert set(counted(release)) <= {"cancelled", "skipped"}, release["counts"]


async def test_a_second_release_of_a_locked_project_is_a_conflict(services, fleet_project):
    _, project = fleet_project
    await project(hooks={"before_release": "sleep 5"})
    first = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    with pytest.raises(Conflict):
        await services.releases.create(ADMIN, {"project": "app", "ref": "v2"})
    await services.releases.cancel(first["id"])
    await settle(services, first["id"])


async def test_a_ref_that_is_not_a_ref_is_refused_before_anything_starts(services,
                                                                         fleet_project):
    _, project = fleet_project
    await project()
    with pytest.raises(Invalid):
        await services.releases.create(ADMIN, {"project": "app", "ref": "-x"})
    assert (await services.releases.list())["releases"] == []


async def test_an_unknown_ref_fails_the_release_and_skips_every_host(services, fleet_project):
    _, project = fleet_project
    await project()
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "no-such"})
    release = await settle(services, started["id"])
    assert release["state"] == "failed" and "no-such" in release["reason"]
    assert counted(release) == {"skipped": 6}


async def test_a_release_reads_as_ended_only_once_its_end_is_stored_everywhere(
        services, fleet_project, monkeypatch):
    _, project = fleet_project
    await project()
    ended_in_memory, last_results = asyncio.Event(), asyncio.Event()
    record_results = services.releases.hosts.record_results

    async def held_back(release, runs):      # the last step of a release's end
        ended_in_memory.set()
        await last_results.wait()
        await record_results(release, runs)

    monkeypatch.setattr(services.releases.hosts, "record_results", held_back)
    started = await services.releases.create(ADMIN, {"project": "app", "ref": "v1"})
    await ended_in_memory.wait()
    reader = asyncio.create_task(services.releases.get(started["id"]))
    await asyncio.sleep(0.3)
    assert not reader.done()
    last_results.set()
    release = await reader
    assert release["state"] == "succeeded"
    stored = await services.store.releases.find_one({"_id": started["id"]})
    assert stored["state"] == "succeeded"
    again = await services.releases.create(ADMIN, {"project": "app", "ref": "v2"})
    assert (await settle(services, again["id"]))["state"] == "succeeded"
