"""GET /api/wall and its stream on a real fleet: every host with its latest state, the
releases, and the `wall` topic after the snapshot's seq carrying every change, with
host state changes coalesced per host."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, deploy_and_wait, register_fleet, register_project, wait_for
from tests.handlers.chatkit import canary_with_vote, user_api, wait_for_vote
from tests.handlers.wallkit import (
    cookie_api,
    link_cookie,
    make_link,
    open_page,
    states,
    wait_for_wall,
    wall_events,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(4)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_the_snapshot_lists_every_registered_host_with_its_groups(api, fleet):
    snapshot = await wait_for_wall(api, lambda s: len(s["hosts"]) == 4)
    assert [h["name"] for h in snapshot["hosts"]] == [h.name for h in fleet.hosts]
    assert all(h["groups"] == ["web"] and h["state"] == "none" for h in snapshot["hosts"])
    assert set(snapshot) == {"hosts", "releases", "votes", "seq"}


async def test_a_release_shows_on_every_host_with_its_project_ref_and_sha(api, fleet,
                                                                         app_repo):
    release = await deploy_and_wait(api, "v2")
    snapshot = await wait_for_wall(api, lambda s: set(states(s).values()) == {"ok"})
    for host in snapshot["hosts"]:
        assert (host["release_id"], host["project"], host["ref"], host["sha"]) == (
            release["id"], "app", "v2", app_repo.shas["v2"])
        assert host["updated_at"]
    [summary] = snapshot["releases"]
    assert summary["state"] == "succeeded" and summary["counts"]["ok"] == 4
    assert summary["created_by"] == "admin" and summary["duration_ms"] > 0


async def test_the_events_after_the_seq_turn_the_snapshot_into_the_final_state(api, fleet):
    before = await wait_for_wall(api, lambda s: len(s["hosts"]) == 4)
    await deploy_and_wait(api, "v2")
    after = await wait_for_wall(api, lambda s: set(states(s).values()) == {"ok"})
    replayed = states(before)
    for event in await wall_events(api, before["seq"]):
        for name, (state, _stage) in (event["data"].get("hosts") or {}).items():
            replayed[name] = state
    assert replayed == states(after)
    assert after["seq"] > before["seq"]


async def test_host_changes_are_coalesced_per_host_into_few_wall_events(api, fleet):
    before = await wait_for_wall(api, lambda s: len(s["hosts"]) == 4)
    release = await deploy_and_wait(api, "v2")
    wall = await wall_events(api, before["seq"])
    _status, body = await api.get(f"/api/events?topic=release:{release['id']}&after=0"
                                 "&wait=0&limit=2000")
    changes = [e for e in body["events"] if e["type"] in ("host", "stage")]
    told = sum(len(e["data"].get("hosts") or {}) for e in wall)
    assert told < len(changes) / 2
    assert all(len(set(e["data"].get("hosts") or {})) == len(e["data"].get("hosts") or {})
               for e in wall)


async def test_a_failing_hook_leaves_its_host_failed_and_the_others_ok(api, fleet):
    status, _ = await api.put("/api/projects/app", {"hooks": {"before_release": (
        f'[ "$FERRY_HOST" = {fleet.hosts[1].name} ] && exit 3; true\n')}})
    assert status == 200
    release = await deploy_and_wait(api, "v2")
    snapshot = await wait_for_wall(api, lambda s: s["releases"][0]["state"] == "failed" and
                                   "running" not in states(s).values())
    expected = {run["host"]: run["state"] for run in release["host_runs"]}
    assert states(snapshot) == expected
    assert expected[fleet.hosts[1].name] == "failed"


async def test_a_wall_link_reads_the_snapshot_and_long_polls_the_wall_topic(api, fleet,
                                                                           base_url):
    link = await make_link(api)
    screen = cookie_api(base_url, await link_cookie(base_url, link["token"]))
    status, snapshot = await screen.get("/api/wall")
    assert status == 200 and len(snapshot["hosts"]) == 4
    await deploy_and_wait(api, "v2")
    events = await wall_events(screen, snapshot["seq"])
    assert any(e["data"].get("hosts") for e in events)


async def test_links_are_listed_without_their_token_and_record_their_use(api, base_url):
    link = await make_link(api, "ops TV")
    assert link["token"].startswith("fw_") and link["path"] == f"/wall?key={link['token']}"
    cookie = await link_cookie(base_url, link["token"])
    for _ in range(2):
        assert (await open_page(base_url, "/wall", cookie)).code == 200
    _status, body = await api.get("/api/wall/links")
    [listed] = body["links"]
    assert "token" not in listed and "digest" not in listed
    assert listed["name"] == "ops TV" and listed["last_used_at"] and listed["uses"] == 2


async def test_revoking_a_link_is_seen_by_its_screen(api, base_url):
    link = await make_link(api)
    screen = cookie_api(base_url, await link_cookie(base_url, link["token"]))
    assert (await screen.get("/api/wall"))[0] == 200
    status, revoked = await api.delete(f"/api/wall/links/{link['id']}")
    assert status == 200 and revoked["revoked_at"]
    status, body = await screen.get("/api/wall")
    assert status == 410 and body["message"] == "this wall link was revoked"
    assert (await screen.get("/api/wall/events?topic=wall&after=0&wait=0"))[0] == 401


async def test_revoking_an_unknown_link_is_404(api):
    assert (await api.delete("/api/wall/links/999"))[0] == 404
    assert (await api.delete("/api/wall/links/" + "9" * 30))[0] == 404


async def test_a_viewer_may_watch_the_wall_but_not_make_links(services, base_url):
    viewer = await user_api(services, base_url, "vic", "viewer")
    assert (await viewer.get("/api/wall"))[0] == 200
    assert (await viewer.post("/api/wall/links", {"name": "x"}))[0] == 403
    assert (await viewer.get("/api/wall/links"))[0] == 403


async def test_an_open_vote_shows_on_the_wall_with_its_go_count(api, fleet):
    release = await deploy(api, "v2", strategy=canary_with_vote())
    await wait_for(api, release["id"], ("paused",))
    await wait_for_vote(api, release["id"])
    snapshot = await wait_for_wall(api, lambda s: s["votes"])
    [vote] = snapshot["votes"]
    assert (vote["release_id"], vote["state"], vote["go"], vote["min_go"]) == (
        release["id"], "open", 0, 2)
    assert (await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go"}))[0] == 200
    snapshot = await wait_for_wall(api, lambda s: s["votes"] and s["votes"][0]["go"] == 1)
    assert any(r["release_id"] == release["id"] and r["state"] == "paused"
               for r in snapshot["releases"])
    await api.post(f"/api/releases/{release['id']}/cancel")
    await wait_for_wall(api, lambda s: not s["votes"])
