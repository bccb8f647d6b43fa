"""Project isolation: a user sees only the projects they have a role on, through every
API, page, event topic (WebSocket and long-poll) and chat room; a project they cannot see
answers exactly as one that does not exist."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
import tornado.httpclient

from tests.conftest import Api
from tests.deploykit import register_project
from tests.handlers.eventkit import next_message, ws_connect

OURS, THEIRS = 1, 2       # release ids: one of project "alpha", one of project "beta"


@dataclass
class World:
    admin: Api
    deployer: Api         # global role "member", deployer of alpha only
    viewer: Api           # global role "member", viewer of alpha only
    deployer_token: str


async def member(services, base_url: str, admin: Api, name: str, role: str) -> Api:
    user = await services.auth.create_user(name, f"{name}-password", "member")
    status, body = await admin.put(f"/api/projects/alpha/members/{name}", {"role": role})
    assert status == 200, body
    return Api(base_url, await services.auth.create_token(user, "tests"))


@pytest.fixture
async def world(services, base_url, api, app_repo) -> World:
    for name in ("alpha", "beta"):
        await register_project(api, app_repo, name)
    for release_id, project in ((OURS, "alpha"), (THEIRS, "beta")):
        await services.store.releases.insert_one(
            {"_id": release_id, "project": project, "environment": "production",
             "kind": "deploy", "ref": "v1", "sha": None, "state": "succeeded",
             "hosts": ["h1"], "strategy": {}, "created_by": "admin"})
    deployer = await member(services, base_url, api, "dora", "deployer")
    viewer = await member(services, base_url, api, "vic", "viewer")
    return World(api, deployer, viewer, deployer.token)


RELEASE_READS = ["/api/releases/{id}", "/api/releases/{id}/hosts/h1/log",
                 "/api/releases/{id}/vote", "/api/releases/{id}/rollback",
                 "/api/releases/{id}/logs", "/api/releases/{id}/approval",
                 "/api/chat/release-{id}/messages"]
RELEASE_ACTIONS = ["/api/releases/{id}/cancel", "/api/releases/{id}/promote",
                   "/api/releases/{id}/retry", "/api/releases/{id}/rollback",
                   "/api/releases/{id}/vote", "/api/chat/release-{id}/messages"]


async def test_another_projects_release_reads_answer_as_an_unknown_release(world):
    for path in RELEASE_READS:
        status, theirs = await world.deployer.get(path.format(id=THEIRS))
        _, unknown = await world.deployer.get(path.format(id=999))
        assert status == 404, (path, theirs)
        assert theirs["message"].replace(str(THEIRS), "N") == unknown["message"].replace(
            "999", "N"), path


async def test_another_projects_release_actions_are_refused(world, services):
    for path in RELEASE_ACTIONS:
        status, body = await world.deployer.post(path.format(id=THEIRS),
                                                 {"choice": "go", "text": "/promote"})
        assert status == 404, (path, body)
    release = await services.store.releases.find_one({"_id": THEIRS})
    assert release["state"] == "succeeded"


async def test_another_project_and_its_settings_answer_as_unknown(world):
    for path in ("/api/projects/beta", "/api/projects/beta/refs",
                 "/api/projects/beta/commits", "/api/projects/beta/members"):
        status, body = await world.deployer.get(path)
        assert status == 404 and body["message"] == "no project named 'beta'", (path, body)
    status, _ = await world.deployer.put("/api/projects/beta", {"description": "x"})
    assert status == 404
    status, _ = await world.deployer.post("/api/releases", {"project": "beta", "ref": "v1"})
    assert status == 404


async def test_lists_hold_only_the_projects_one_sees(world):
    _, body = await world.deployer.get("/api/projects")
    assert [p["name"] for p in body["projects"]] == ["alpha"]
    _, body = await world.deployer.get("/api/releases")
    assert [r["id"] for r in body["releases"]] == [OURS]
    _, body = await world.deployer.get("/api/releases?project=beta")
    assert body["releases"] == []
    _, body = await world.admin.get("/api/releases")
    assert {r["id"] for r in body["releases"]} == {OURS, THEIRS}


async def test_long_poll_refuses_another_projects_topics_like_unknown_ones(world):
    for topic in (f"release:{THEIRS}", f"chat:release-{THEIRS}", "chat:project-beta", "wall"):
        status, body = await world.deployer.get(f"/api/events?topic={topic}&wait=0")
        assert status == 404 and body["message"] == f"unknown topic {topic!r}", body
    for topic in (f"release:{OURS}", f"chat:release-{OURS}", "chat:project-alpha"):
        status, body = await world.deployer.get(f"/api/events?topic={topic}&wait=0")
        assert status == 200, (topic, body)


async def test_websocket_refuses_another_projects_topics_like_unknown_ones(world, base_url):
    conn = await ws_connect(base_url, world.deployer_token)
    try:
        for topic in (f"release:{THEIRS}", f"chat:release-{THEIRS}", "chat:project-beta",
                      "wall", "release:999"):
            conn.write_message(f'{{"op": "subscribe", "topic": "{topic}", "after": 0}}')
            answer = await next_message(conn)
            assert answer["reason"] == "unknown_topic" and answer["topic"] == topic, answer
        conn.write_message(f'{{"op": "subscribe", "topic": "release:{OURS}", "after": 0}}')
        answer = await next_message(conn)
        assert answer.get("topic") == f"release:{OURS}" and "error" not in answer, answer
    finally:
        conn.close()


async def test_a_member_viewer_reads_but_cannot_deploy(world):
    status, _ = await world.viewer.get(f"/api/releases/{OURS}")
    assert status == 200
    status, _ = await world.viewer.get("/api/chat/project-alpha/messages")
    assert status == 200
    status, body = await world.viewer.post("/api/releases", {"project": "alpha", "ref": "v1"})
    assert status == 403 and "deployer" in body["message"], body
    for path in ("retry", "rollback", "cancel", "vote"):
        status, body = await world.viewer.post(f"/api/releases/{OURS}/{path}",
                                               {"choice": "go"})
        assert status == 403, (path, body)
    status, body = await world.viewer.post(f"/api/chat/release-{OURS}/messages",
                                           {"text": "/cancel"})
    assert status == 403 and "nothing was done" in body["message"], body


async def test_the_whole_fleet_wall_and_hosts_are_refused_to_a_member(world):
    for path in ("/api/wall", "/api/hosts"):
        status, body = await world.deployer.get(path)
        assert status == 403, (path, body)


async def test_pages_of_another_project_answer_404(world, base_url):
    client = tornado.httpclient.AsyncHTTPClient()
    headers = {"Authorization": f"Bearer {world.deployer_token}"}
    for path, expected in (("/projects/beta", 404), (f"/releases/{THEIRS}", 404),
                           ("/projects/beta/release", 404), ("/projects/alpha", 200),
                           (f"/releases/{OURS}", 200), ("/projects/alpha/release", 200),
                           (f"/releases/{THEIRS}/vote", 404)):
        response = await client.fetch(base_url + path, headers=headers, raise_error=False,
                                      follow_redirects=False)
        assert response.code == expected, (path, response.code)


@pytest.mark.parametrize("settings_overrides", [{"ws_auth_recheck_s": 0.2}])
async def test_a_removed_member_loses_a_live_subscription(world, base_url):
    conn = await ws_connect(base_url, world.deployer_token)
    try:
        conn.write_message(f'{{"op": "subscribe", "topic": "release:{OURS}", "after": 0}}')
        assert "error" not in await next_message(conn)
        status, _ = await world.admin.delete("/api/projects/alpha/members/dora")
        assert status == 204
        while "error" not in (answer := await next_message(conn)):
            pass
        assert answer["reason"] == "unknown_topic" and answer["topic"] == f"release:{OURS}"
    finally:
        conn.close()


@pytest.mark.parametrize("settings_overrides", [{"ws_auth_recheck_s": 0.2}])
async def test_a_disabled_users_socket_is_closed(world, base_url):
    conn = await ws_connect(base_url, world.deployer_token)
    try:
        conn.write_message(f'{{"op": "subscribe", "topic": "release:{OURS}", "after": 0}}')
        assert "error" not in await next_message(conn)
        assert (await world.admin.put("/api/users/dora", {"disabled": True}))[0] == 200
        while await asyncio.wait_for(conn.read_message(), 30) is not None:
            pass                     # an error frame, then the close
        assert conn.close_code == 4401
    finally:
        conn.close()


async def test_a_project_given_as_a_query_operator_opens_nothing(world, services):
    for project in ({"$ne": None}, {"$gt": ""}, ["beta"]):
        status, body = await world.viewer.post("/api/releases", {"project": project,
                                                                 "ref": "v1"})
        assert status in (400, 404), (project, body)
    assert await services.store.releases.count_documents({}) == 2
