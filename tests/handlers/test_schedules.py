"""Scheduled releases: `not_before` holds a release in `scheduled` until its time, through
a restart of Ferry; it can be cancelled (it never starts) or started now."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import UTC, datetime, timedelta

import pytest

from tests.deploykit import (
    current_target,
    deploy,
    register_fleet,
    register_project,
    wait_for,
)
from tests.ferryproc import Ferry

pytestmark = pytest.mark.slow


async def until(when: datetime) -> None:
    await asyncio.sleep(max(0.0, (when - datetime.now(UTC)).total_seconds()))


def in_seconds(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_a_release_scheduled_three_seconds_ahead_starts_by_itself(api, fleet, services):
    release = await deploy(api, "v1", not_before=in_seconds(3))
    assert release["state"] == "scheduled"
    status, waiting = await api.get("/api/releases/waiting")
    assert status == 200 and [r["id"] for r in waiting["scheduled"]] == [release["id"]]
    done = await wait_for(api, release["id"], ("succeeded", "failed"), timeout=60)
    assert done["state"] == "succeeded", done
    assert done["started_at"] >= done["not_before"]
    assert current_target(fleet, 0) == f"releases/{release['id']}"
    assert await services.store.audit.find_one({"action": "release.schedule"})


async def test_a_cancelled_scheduled_release_never_starts(api, fleet):
    due = datetime.now(UTC) + timedelta(seconds=2)
    release = await deploy(api, "v1", not_before=due.isoformat())
    status, body = await api.post(f"/api/releases/{release['id']}/cancel")
    assert status == 202 and body["state"] == "cancelled", body
    await until(due + timedelta(seconds=1))          # past its time
    status, after = await api.get(f"/api/releases/{release['id']}")
    assert after["state"] == "cancelled" and after["host_runs"] == [] and not after["started_at"]
    assert not os.path.lexists(fleet.host_path(0, "/srv/app/current"))


async def test_start_now_starts_a_scheduled_release_at_once(api, fleet):
    release = await deploy(api, "v1", not_before=in_seconds(3600))
    status, body = await api.post(f"/api/releases/{release['id']}/start")
    assert status == 200 and body["state"] in ("pending", "running"), body
    assert (await wait_for(api, release["id"]))["state"] == "succeeded"
    status, body = await api.post(f"/api/releases/{release['id']}/start")
    assert status == 409


@pytest.mark.parametrize("not_before, message", [
    ("2020-01-01T00:00:00Z", "in the future"),
    (timedelta(days=91), "at most 90 days"),       # from now, when the test runs
    ("2099-01-01T00:00:00", "UTC offset"),
    ("tomorrow", "ISO 8601"),
    (12, "ISO 8601"),
])
async def test_an_invalid_not_before_is_refused_with_a_message(
        api, app_repo, not_before, message):
    if isinstance(not_before, timedelta):
        not_before = (datetime.now(UTC) + not_before).isoformat()
    await register_project(api, app_repo)
    status, body = await api.post("/api/releases", {"project": "app", "ref": "v1",
                                                    "not_before": not_before})
    assert status == 400 and message in body["message"], body


async def test_a_scheduled_release_that_came_due_while_ferry_was_down_starts_at_start_up(
        tmp_path, make_fleet, app_repo):
    fleet = await make_fleet(2)
    ferry = Ferry(tmp_path / "ferry")
    try:
        api = await ferry.start()
        await register_fleet(api, fleet)
        await register_project(api, app_repo)
        due = datetime.now(UTC) + timedelta(seconds=4)
        release = await deploy(api, "v2", not_before=due.isoformat())
        assert await ferry.signal_group(signal.SIGTERM) == 0
        await until(due)                         # it comes due while Ferry is down
        api = await ferry.start()
        done = await wait_for(api, release["id"], ("succeeded", "failed"), timeout=90)
        assert done["state"] == "succeeded", done
        assert current_target(fleet, 1) == f"releases/{release['id']}"
    finally:
        ferry.cleanup()
