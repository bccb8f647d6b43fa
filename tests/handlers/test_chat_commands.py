"""Chat commands in a release's room, checked against the sender's role like the API,
and what Ferry itself says in the rooms while a release runs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.settings import Settings
from tests.deploykit import deploy, deploy_and_wait, register_fleet, register_project, wait_for
from tests.handlers.chatkit import (
    CANARY,
    room_messages,
    user_api,
    wait_for_message,
    wait_for_vote,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(chat_rate_burst=100, chat_failure_window_s=2)


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(4)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_promote_from_a_deployer_continues_a_paused_release(services, base_url, api,
                                                                  fleet):
    dora = await user_api(services, base_url, "dora", "deployer")
    release = await deploy(api, "v1", strategy=CANARY)
    await wait_for(api, release["id"], ("paused",))
    status, message = await dora.post(f"/api/chat/release-{release['id']}/messages",
                                      {"text": "/promote"})
    assert status == 201, message
    assert message["text"] == "/promote" and message["user"] == "dora"
    assert "dora promoted" in message["reply"]["text"]
    assert (await wait_for(api, release["id"]))["state"] == "succeeded"


async def test_promote_from_a_viewer_is_refused_to_that_viewer_only(services, base_url, api,
                                                                    fleet):
    viewer = await user_api(services, base_url, "vic", "viewer")
    release = await deploy(api, "v1", strategy=CANARY)
    await wait_for(api, release["id"], ("paused",))
    room = f"release-{release['id']}"
    status, body = await viewer.post(f"/api/chat/{room}/messages", {"text": "/promote"})
    assert status == 403 and "deployer" in body["message"]
    assert not [m for m in await room_messages(api, room) if m["user"] == "vic"]
    assert (await api.get(f"/api/releases/{release['id']}"))[1]["state"] == "paused"
    await api.post(f"/api/releases/{release['id']}/cancel")


async def test_go_and_nogo_vote_with_their_comment(services, base_url, api, fleet):
    dora = await user_api(services, base_url, "dora", "deployer")
    release = await deploy(api, "v1", strategy={**CANARY, "vote": {"min_go": 2, "veto": False}})
    await wait_for_vote(api, release["id"])
    room = f"release-{release['id']}/messages"
    assert (await api.post(f"/api/chat/{room}", {"text": "/nogo wait for QA"}))[0] == 201
    assert (await api.post(f"/api/chat/{room}", {"text": "/go QA done"}))[0] == 201
    vote = (await api.get(f"/api/releases/{release['id']}/vote"))[1]
    assert [(v["user"], v["choice"], v["comment"]) for v in vote["votes"]] == [
        ("admin", "go", "QA done")]
    assert (await dora.post(f"/api/chat/{room}", {"text": "/go"}))[0] == 201
    assert (await wait_for(api, release["id"]))["state"] == "succeeded"


async def test_status_answers_in_the_room_for_a_viewer(services, base_url, api, fleet):
    viewer = await user_api(services, base_url, "vic", "viewer")
    release = await deploy_and_wait(api, "v1")
    status, message = await viewer.post(f"/api/chat/release-{release['id']}/messages",
                                        {"text": "/status"})
    assert status == 201
    assert "succeeded" in message["reply"]["text"] and message["reply"]["kind"] == "system"


async def test_an_unknown_command_is_refused_with_the_list(api, fleet):
    release = await deploy_and_wait(api, "v1")
    status, body = await api.post(f"/api/chat/release-{release['id']}/messages",
                                  {"text": "/deploy prod"})
    assert status == 400 and "/promote" in body["message"]


async def test_ferry_tells_start_pause_and_end_in_the_release_and_project_rooms(api, fleet,
                                                                              app_repo):
    release = await deploy(api, "v2", strategy=CANARY)
    await wait_for(api, release["id"], ("paused",))
    await api.post(f"/api/releases/{release['id']}/promote")
    await wait_for(api, release["id"])
    room = f"release-{release['id']}"
    started = await wait_for_message(api, room, "started by admin")
    assert "v2" in started["text"] and app_repo.shas["v2"][:12] in started["text"]
    assert "4 hosts" in started["text"] and started["kind"] == "system"
    await wait_for_message(api, room, "paused after batch 1 of 2")
    ended = await wait_for_message(api, room, "succeeded: 4 ok")
    assert " s." in ended["text"]
    await wait_for_message(api, "project-app", "succeeded: 4 ok")


async def test_host_failures_are_told_in_one_message_not_one_per_host(api, fleet):
    await api.put("/api/projects/app", {"hooks": {
        "before_release": '[ "$FERRY_HOST" = host-0 ] || exit 1'}})
    release = await deploy_and_wait(api, "v1")
    assert release["counts"]["failed"] == 3
    room = f"release-{release['id']}"
    told = await wait_for_message(api, room, "hosts failed in the last")
    assert told["text"].startswith("3 hosts failed in the last")
    assert all(f"host-{n}" in told["text"] for n in (1, 2, 3))
    texts = [m["text"] for m in await room_messages(api, room)]
    assert sum("failed in the last" in t for t in texts) == 1


async def test_cancel_of_a_release_not_started_yet_cancels_it_before_it_starts(api, fleet):
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    release = await deploy(api, "v1", not_before=later)
    assert release["state"] == "scheduled"
    status, message = await api.post(f"/api/chat/release-{release['id']}/messages",
                                      {"text": "/cancel"})
    assert status == 201, message
    assert "before it started" in message["reply"]["text"] and "audit" not in message
    status, after = await api.get(f"/api/releases/{release['id']}")
    assert after["state"] == "cancelled" and not after["started_at"]
    [entry] = await audited(api, "release.cancel")
    assert entry["via"] == "chat" and entry["details"]["before_start"] is True


async def test_rollback_from_the_chat_is_audited_with_the_release_it_started(api, fleet):
    await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v2")
    status, message = await api.post(f"/api/chat/release-{second['id']}/messages",
                                      {"text": "/rollback"})
    assert status == 201, message
    [entry] = await audited(api, "release.rollback")
    started = entry["details"]["release"]
    assert entry["via"] == "chat" and entry["target"] == str(second["id"])
    assert f"started release #{started}" in message["reply"]["text"]
    assert (await wait_for(api, started))["kind"] == "rollback"


async def audited(api, action: str) -> list[dict]:
    status, body = await api.get(f"/api/audit?action={action}")
    assert status == 200, body
    return [entry for entry in body["entries"] if entry["action"] == action]
