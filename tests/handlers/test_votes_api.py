"""The go/no-go vote on a real fleet: a canary pauses after one host and the vote
decides whether it goes on, is cancelled (and rolled back) or times out."""

from __future__ import annotations

import pytest

from services.settings import Settings
from tests.deploykit import (
    current_target,
    deploy,
    deploy_and_wait,
    register_fleet,
    register_project,
    wait_for,
)
from tests.handlers.chatkit import (
    canary_with_vote,
    room_messages,
    user_api,
    wait_for_message,
    wait_for_vote,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(chat_rate_burst=100)


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


@pytest.fixture
async def dora(services, base_url):
    return await user_api(services, base_url, "dora", "deployer")


async def paused_canary(api, ref: str = "v2", **vote) -> dict:
    release = await deploy(api, ref, strategy=canary_with_vote(**vote))
    paused = await wait_for(api, release["id"], ("paused",))
    assert paused["counts"]["ok"] == 1 and paused["counts"]["pending"] == 1
    await wait_for_vote(api, release["id"])
    return paused


async def test_one_go_leaves_the_canary_paused_and_a_second_go_deploys_every_host(
        api, fleet, dora):
    release = await paused_canary(api)
    status, vote = await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    assert status == 200 and vote["state"] == "open" and vote["go"] == 1
    assert (await api.get(f"/api/releases/{release['id']}"))[1]["state"] == "paused"
    status, vote = await dora.post(f"/api/releases/{release['id']}/vote",
                                   {"choice": "go", "comment": "canary looks fine"})
    assert status == 200 and vote["state"] == "passed"
    done = await wait_for(api, release["id"])
    assert done["state"] == "succeeded" and done["counts"]["ok"] == 2
    for index in range(2):
        assert current_target(fleet, index) == f"releases/{release['id']}"


async def test_a_no_go_under_veto_cancels_and_auto_rollback_switches_the_canary_back(
        api, fleet, dora):
    v1 = await deploy_and_wait(api, "v1")
    release = await deploy(api, "v2", strategy={**canary_with_vote(), "auto_rollback": True})
    await wait_for(api, release["id"], ("paused",))
    await wait_for_vote(api, release["id"])
    assert current_target(fleet, 0) == f"releases/{release['id']}"
    status, vote = await dora.post(f"/api/releases/{release['id']}/vote",
                                   {"choice": "no_go", "comment": "error rate up"})
    assert status == 200 and vote["state"] == "failed"
    done = await wait_for(api, release["id"])
    assert done["state"] == "cancelled"
    assert current_target(fleet, 0) == f"releases/{v1['id']}"
    assert current_target(fleet, 1) == f"releases/{v1['id']}"


async def test_the_deadline_with_on_timeout_cancel_cancels_by_itself(api, fleet):
    release = await paused_canary(api, timeout_s=2, on_timeout="cancel")
    done = await wait_for(api, release["id"])
    assert done["state"] == "cancelled"
    _, vote = await api.get(f"/api/releases/{release['id']}/vote")
    assert vote["state"] == "expired" and vote["outcome"]["how"] == "timeout"


async def test_voting_twice_changes_the_vote_not_the_count(api, fleet):
    release = await paused_canary(api, veto=False)
    await api.post(f"/api/releases/{release['id']}/vote", {"choice": "no_go"})
    status, vote = await api.post(f"/api/releases/{release['id']}/vote",
                                  {"choice": "go", "comment": "changed my mind"})
    assert status == 200 and vote["state"] == "open"
    assert (vote["go"], vote["no_go"]) == (1, 0)
    assert [(v["user"], v["choice"], v["comment"]) for v in vote["votes"]] == [
        ("admin", "go", "changed my mind")]


async def test_a_viewers_vote_is_refused_with_403(services, base_url, api, fleet):
    viewer = await user_api(services, base_url, "vic", "viewer")
    release = await paused_canary(api)
    status, body = await viewer.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    assert status == 403 and "deployer" in body["message"]
    assert (await api.get(f"/api/releases/{release['id']}/vote"))[1]["votes"] == []


async def test_exclude_initiator_keeps_the_author_from_voting(api, fleet, dora):
    release = await paused_canary(api, exclude_initiator=True)
    status, body = await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    assert status == 403 and "started" in body["message"]
    assert (await dora.post(f"/api/releases/{release['id']}/vote", {"choice": "go"}))[0] == 200


async def test_a_plain_promote_closes_the_vote_as_an_override(api, fleet, dora):
    release = await paused_canary(api)
    await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    status, _ = await dora.post(f"/api/releases/{release['id']}/promote")
    assert status == 202
    status, vote = await api.get(f"/api/releases/{release['id']}/vote")
    assert vote["state"] == "passed"
    assert vote["outcome"]["how"] == "override" and vote["outcome"]["by"] == "dora"
    assert (await wait_for(api, release["id"]))["state"] == "succeeded"


async def test_every_vote_and_the_outcome_are_release_events_and_room_messages(
        api, fleet, dora):
    release = await paused_canary(api)
    rid = release["id"]
    await api.post(f"/api/releases/{rid}/vote", {"choice": "go"})
    await dora.post(f"/api/releases/{rid}/vote", {"choice": "go", "comment": "ok"})
    await wait_for(api, rid)
    _, polled = await api.get(f"/api/events?topic=release:{rid}&after=0&limit=2000")
    votes = [e["data"] for e in polled["events"] if e["type"] == "vote"]
    assert [v["state"] for v in votes] == ["open", "open", "open", "passed"]
    assert [v.get("user") for v in votes[1:3]] == ["admin", "dora"]
    texts = [m["text"] for m in await room_messages(api, f"release-{rid}")]
    assert any(t.startswith("Vote open") for t in texts)
    assert any("dora votes go" in t and t.endswith(": ok") for t in texts)
    assert any("passed" in t for t in texts)
    await wait_for_message(api, "project-app", "Vote on release")


async def test_bad_choices_and_types_get_400(api, fleet):
    release = await paused_canary(api)
    for body in ({"choice": "maybe"}, {"choice": 1}, {"choice": ["go"]}, {},
                 {"choice": "go", "comment": 5}, {"choice": "go", "comment": "x" * 501}):
        status, answer = await api.post(f"/api/releases/{release['id']}/vote", body)
        assert status == 400, (body, answer)
    assert (await api.get(f"/api/releases/{release['id']}/vote"))[1]["votes"] == []


async def test_a_release_without_a_vote_has_none(api, fleet):
    release = await deploy_and_wait(api, "v1")
    assert (await api.get(f"/api/releases/{release['id']}/vote"))[0] == 404
    status, _ = await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    assert status == 409


async def test_a_strategy_with_a_vote_but_no_pause_is_refused(api, fleet):
    status, body = await api.post("/api/releases", {"project": "app", "ref": "v1", "strategy": {
        "vote": {"min_go": 1}}})
    assert status == 400 and "pause_after" in body["message"]


async def test_the_vote_survives_a_restart_and_can_still_be_decided(
        settings, make_fleet, app_repo):
    import uuid

    import pymongo

    from tests.conftest import Api
    from tests.handlers.eventkit import instance

    settings = settings.replace(db_name=f"t_{uuid.uuid4().hex[:12]}")
    fleet = await make_fleet(2)
    try:
        async with instance(settings) as (services, base_url):
            await services.auth.ensure_admin("admin-password")
            admin = await services.auth.check_password("admin", "admin-password")
            token = await services.auth.create_token(admin, "tests")
            api = Api(base_url, token)
            await register_fleet(api, fleet)
            await register_project(api, app_repo)
            release = await paused_canary(api)
            assert (await api.post(f"/api/releases/{release['id']}/vote",
                                   {"choice": "go", "comment": "before"}))[0] == 200
        async with instance(settings) as (services, base_url):
            api = Api(base_url, token)
            status, again = await api.get(f"/api/releases/{release['id']}")
            assert again["state"] == "paused" and again["paused_after_batch"] == 1
            status, vote = await api.get(f"/api/releases/{release['id']}/vote")
            assert vote["state"] == "open"
            assert [(v["user"], v["choice"], v["comment"]) for v in vote["votes"]] == [
                ("admin", "go", "before")]
            dora = await user_api(services, base_url, "dora", "deployer")
            status, vote = await dora.post(f"/api/releases/{release['id']}/vote",
                                           {"choice": "go"})
            assert status == 200 and vote["state"] == "passed"
            done = await wait_for(api, release["id"])
            assert done["state"] == "succeeded" and done["counts"]["ok"] == 2
            for index in range(2):
                assert current_target(fleet, index) == f"releases/{release['id']}"
    finally:
        client = pymongo.AsyncMongoClient(settings.mongo_url)
        await client.drop_database(settings.db_name)
        await client.close()
