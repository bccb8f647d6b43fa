"""Freeze windows: a release that would start inside one is refused with 409 naming the
window and when it ends; an admin may override it with a written reason, which is kept in
the release and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.deploykit import deploy, register_fleet, register_project, wait_for
from tests.handlers.chatkit import user_api

pytestmark = pytest.mark.slow


def window_around_now(reason: str = "Quarter-end audit") -> dict:
    now = datetime.now(UTC)
    return {"start": (now - timedelta(hours=1)).isoformat(),
            "end": (now + timedelta(hours=2)).replace(microsecond=0).isoformat(),
            "reason": reason}


@pytest.fixture
async def frozen(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    window = window_around_now()
    await register_project(api, app_repo, freezes=[window])
    return window


async def test_a_release_inside_a_freeze_gets_409_naming_the_window_and_its_end(api, frozen):
    status, body = await api.post("/api/releases", {"project": "app", "ref": "v1"})
    assert status == 409, body
    assert "Quarter-end audit" in body["message"]
    until = datetime.fromisoformat(frozen["end"]).astimezone(UTC).isoformat()
    assert until in body["message"]
    _, listing = await api.get("/api/releases")
    assert listing["releases"] == []


async def test_an_admin_override_with_a_reason_starts_it_and_is_audited(
        api, frozen, services):
    release = await deploy(api, "v1", override_freeze="hotfix for the payment outage")
    done = await wait_for(api, release["id"])
    assert done["state"] == "succeeded", done
    override = done["freeze_override"]
    assert override["by"] == "admin" and override["reason"] == "hotfix for the payment outage"
    assert override["window"]["reason"] == "Quarter-end audit"
    entry = await services.store.audit.find_one({"action": "freeze.override"})
    assert entry is not None and entry["actor"] == "admin"
    assert entry["target"] == str(release["id"])
    assert entry["details"]["reason"] == "hotfix for the payment outage"


async def test_a_deployer_may_not_override_a_freeze(frozen, services, base_url):
    dora = await user_api(services, base_url, "dora", "deployer")
    status, body = await dora.post("/api/releases", {"project": "app", "ref": "v1",
                                                     "override_freeze": "trust me"})
    assert status == 403 and "admin" in body["message"]


async def test_a_recurring_window_in_a_time_zone_freezes_too(api, app_repo):
    # Opens every minute and lasts two: always frozen.
    await register_project(api, app_repo, freezes=[
        {"cron": "* * * * *", "duration_s": 120, "timezone": "Europe/Berlin",
         "reason": "weekly freeze"}])
    status, body = await api.post("/api/releases", {"project": "app", "ref": "v1"})
    assert status == 409 and "weekly freeze" in body["message"]


@pytest.mark.parametrize("window, message", [
    ({"start": "2026-01-01T00:00:00", "end": "2026-01-02T00:00:00Z", "reason": "x"},
     "UTC offset"),
    ({"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z", "reason": "x"},
     "end must be after start"),
    ({"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"}, "reason"),
    ({"cron": "0 16 * * fri; rm", "duration_s": 60, "reason": "x"}, "cron"),
    ({"cron": "0 16 * * 5", "duration_s": 60, "timezone": "../../etc/passwd",
      "reason": "x"}, "time zone"),
    ({"cron": "0 16 * * 5", "duration_s": 60, "timezone": "Mars/Olympus", "reason": "x"},
     "unknown time zone"),
    ({"cron": "0 16 * * 5", "duration_s": 10**9, "reason": "x"}, "duration_s"),
    ({"cron": "0 16 * * 5", "duration_s": 60, "reason": "x\ny"}, "line breaks"),
])
async def test_an_invalid_freeze_window_is_refused_with_a_message(
        api, app_repo, window, message):
    status, body = await api.post("/api/projects", {
        "name": "bad", "repo_url": app_repo.url, "deploy_path": "/srv/bad",
        "freezes": [window]})
    assert status == 400 and message in body["message"], body
