"""Approvals on a real fleet: a project that requires two approvers other than the
initiator holds its releases in `awaiting_approval` until they agree; one rejection or the
deadline ends the release without touching a host."""

from __future__ import annotations

import os

import pytest

from tests.deploykit import (
    current_target,
    deploy,
    register_fleet,
    register_project,
    wait_for,
)
from tests.handlers.chatkit import user_api

pytestmark = pytest.mark.slow
TWO_OTHERS = {"required": 2, "approvers": ["dora", "erin", "role:maintainer"],
              "exclude_initiator": True, "expires_s": 3600}


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, approval=TWO_OTHERS)
    return fleet


@pytest.fixture
async def dora(services, base_url):
    return await user_api(services, base_url, "dora", "deployer")


@pytest.fixture
async def erin(services, base_url):
    return await user_api(services, base_url, "erin", "deployer")


async def approval_events(api, release_id: int) -> list[dict]:
    status, body = await api.get(f"/api/events?topic=release:{release_id}&after=0&wait=0")
    assert status == 200, body
    return [event["data"] for event in body["events"] if event["type"] == "approval"]


async def test_two_approvers_other_than_the_initiator_start_the_release_and_it_deploys(
        api, fleet, dora, erin, services, app_repo):
    release = await deploy(api, "v2")
    assert release["state"] == "awaiting_approval"
    path = f"/api/releases/{release['id']}"

    status, body = await api.post(f"{path}/approve", {"comment": "mine"})
    assert status == 403 and "started release" in body["message"]
    status, body = await dora.post(f"{path}/approve", {"comment": "diff reviewed"})
    assert status == 200 and body["state"] == "awaiting_approval", body
    status, body = await dora.post(f"{path}/approve")
    assert status == 409 and "already approved" in body["message"]
    status, waiting = await erin.get(f"{path}/approval")
    assert waiting["can_approve"] and waiting["awaited"] == ["erin", "role:maintainer"]
    assert [entry["user"] for entry in waiting["approvals"]] == ["dora"]
    for index in range(2):       # nothing reached a host while it waited
        assert not os.path.lexists(fleet.host_path(index, "/srv/app/current"))

    status, body = await erin.post(f"{path}/approve")
    assert status == 200 and body["state"] in ("pending", "running", "succeeded"), body
    done = await wait_for(api, release["id"])
    assert done["state"] == "succeeded", done
    assert done["sha"] == app_repo.shas["v2"]
    for index in range(2):
        assert current_target(fleet, index) == f"releases/{release['id']}"
    events = await approval_events(api, release["id"])
    assert [(e["action"], e["user"]) for e in events] == [("approve", "dora"),
                                                         ("approve", "erin")]
    actions = [doc["action"] async for doc in services.store.audit.find(
        {"target": str(release["id"])})]
    assert actions.count("release.approve") == 2


async def test_someone_who_is_not_an_approver_gets_403(api, fleet, services, base_url):
    viewer = await user_api(services, base_url, "vic", "viewer")
    release = await deploy(api, "v1")
    status, body = await viewer.post(f"/api/releases/{release['id']}/approve")
    assert status == 403 and "not an approver" in body["message"]


async def test_a_hostile_comment_is_refused_and_records_nothing(api, fleet, dora):
    release = await deploy(api, "v1")
    for comment in ("\x1b[2Jcleared", "x" * 501, ["list"], "\u202eevil"):
        status, body = await dora.post(f"/api/releases/{release['id']}/approve",
                                       {"comment": comment})
        assert status == 400, (comment, body)
    status, body = await dora.get(f"/api/releases/{release['id']}/approval")
    assert body["approvals"] == [] and body["can_approve"]


async def test_one_rejection_ends_the_release_rejected_with_its_comment(api, fleet, dora):
    release = await deploy(api, "v1")
    path = f"/api/releases/{release['id']}"
    status, body = await dora.post(f"{path}/reject", {})
    assert status == 400 and "comment" in body["message"]
    status, body = await dora.post(f"{path}/reject", {"comment": "not on a Friday"})
    assert status == 200 and body["state"] == "rejected"
    assert body["reason"] == "rejected by dora: not on a Friday"
    status, body = await dora.post(f"{path}/approve")
    assert status == 409
    events = await approval_events(api, release["id"])
    assert events[-1]["action"] == "reject" and events[-1]["comment"] == "not on a Friday"


async def test_an_approval_not_complete_in_time_ends_the_release_expired(api, fleet, dora):
    status, body = await api.put("/api/projects/app",
                                 {"approval": {**TWO_OTHERS, "expires_s": 1}})
    assert status == 200, body
    release = await deploy(api, "v1")
    await dora.post(f"/api/releases/{release['id']}/approve")
    done = await wait_for(api, release["id"], ("expired",), timeout=30)
    assert "1 of 2 approvals" in done["reason"]
    assert not os.path.lexists(fleet.host_path(0, "/srv/app/current"))


@pytest.mark.parametrize("approval, message", [
    ({"required": 0, "approvers": ["dora"]}, "approval.required"),
    ({"required": 3, "approvers": ["dora", "erin"]}, "only 2 approvers"),
    ({"required": 1, "approvers": ["role:boss"]}, "unknown role"),
    ({"required": 1, "approvers": ["dora\n"]}, "user name"),
    ({"required": 1, "approvers": []}, "approval.approvers"),
    ({"required": 1, "approvers": ["dora"], "expires_s": 10**9}, "approval.expires_s"),
    ({"required": 1, "approvers": ["dora"], "exclude_initiator": "yes"}, "true or false"),
    ({"required": 1, "approvers": ["dora"], "who": 1}, "approval takes"),
])
async def test_an_invalid_approval_setting_is_refused_with_a_message(
        api, app_repo, approval, message):
    status, body = await api.post("/api/projects", {
        "name": "bad", "repo_url": app_repo.url, "deploy_path": "/srv/bad",
        "approval": approval})
    assert status == 400 and message in body["message"], body
