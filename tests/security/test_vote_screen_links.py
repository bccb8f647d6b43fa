"""A wall link opens a release's big-screen vote page and its reads, cut down to what the
screen shows: never logs, never chat text when its admin chose so, never anything that
changes state. Each attack on that scope is one test, named after it."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient
import tornado.websocket

from services.settings import Settings
from tests.conftest import Api
from tests.deploykit import deploy, deploy_and_wait, register_fleet, register_project, wait_for
from tests.handlers.chatkit import canary_with_vote, wait_for_vote
from tests.handlers.wallkit import cookie_api, link_cookie, make_link, open_page

SECRET = "db password is hunter2, do not paste it here"
COMMENT = "canary looks fine"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(wall_link_recheck_s=0.3)


async def screen_of(api, base_url: str, show_chat: bool):
    status, link = await api.post("/api/wall/links", {"name": "TV", "show_chat": show_chat})
    assert status == 201, link
    return link, cookie_api(base_url, await link_cookie(base_url, link["token"]))


async def all_events(screen, release_id: int, topic: str) -> tuple[int, list[dict]]:
    events: list[dict] = []
    after = 0
    while True:
        status, body = await screen.get(f"/api/releases/{release_id}/vote/events?"
                                        f"topic={topic}&after={after}&wait=0")
        if status != 200 or not body["events"]:
            return status, events
        events += body["events"]
        after = body["next"]


async def socket_reply(base_url: str, cookie: str, release_id: int, topic: str) -> dict:
    request = tornado.httpclient.HTTPRequest(
        base_url.replace("http", "ws") + f"/releases/{release_id}/vote/ws",
        headers={"Cookie": cookie})
    socket = await tornado.websocket.websocket_connect(request)
    try:
        await socket.write_message(json.dumps({"op": "subscribe", "topic": topic,
                                               "after": 0}))
        return json.loads(await socket.read_message())
    finally:
        socket.close()


async def test_a_wall_link_without_chat_is_sent_no_chat_text_and_no_vote_comment(
        api, base_url, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    release = await deploy(api, "v2", strategy=canary_with_vote())
    await wait_for(api, release["id"], ("paused",))
    await wait_for_vote(api, release["id"])
    await api.post(f"/api/chat/release-{release['id']}/messages", {"text": SECRET})
    await api.post(f"/api/releases/{release['id']}/vote", {"choice": "go", "comment": COMMENT})
    link, screen = await screen_of(api, base_url, show_chat=False)
    status, snapshot = await screen.get(f"/api/releases/{release['id']}/vote/screen")
    assert status == 200 and snapshot["show_chat"] is False and snapshot["chat"] is None
    assert snapshot["vote"]["votes"] == [{"user": "admin", "choice": "go",
                                          "ts": snapshot["vote"]["votes"][0]["ts"]}]
    status, events = await all_events(screen, release["id"], "release:" + str(release["id"]))
    assert status == 200 and events
    assert {e["type"] for e in events} <= {"release", "batch", "host", "vote"}   # no logs
    status, _ = await all_events(screen, release["id"], f"chat:release-{release['id']}")
    assert status == 404
    reply = await socket_reply(base_url, await link_cookie(base_url, link["token"]),
                               release["id"], f"chat:release-{release['id']}")
    assert reply["reason"] == "unknown_topic"
    everything = json.dumps([snapshot, events])
    assert SECRET not in everything and COMMENT not in everything
    # A link made with chat shows the room's lines and the comments.
    _, chatty = await screen_of(api, base_url, show_chat=True)
    status, snapshot = await chatty.get(f"/api/releases/{release['id']}/vote/screen")
    assert SECRET in [m["text"] for m in snapshot["chat"]]
    assert snapshot["vote"]["votes"][0]["comment"] == COMMENT


async def test_a_wall_link_is_refused_by_the_releases_logs_chat_and_every_action(
        api, base_url, make_fleet, app_repo):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    release = await deploy_and_wait(api, "v1")
    rid = release["id"]
    link, screen = await screen_of(api, base_url, show_chat=True)
    status, _ = await screen.get(f"/api/releases/{rid}/vote/screen")
    assert status == 200                                  # what the token is for
    cookie = await link_cookie(base_url, link["token"])
    bearer = Api(base_url, None)
    bearer_headers = {"Authorization": f"Bearer {link['token']}"}
    reads = [f"/api/releases/{rid}/hosts/host-0/log", f"/api/chat/release-{rid}/messages",
             f"/api/releases/{rid}", f"/api/releases/{rid}/vote",
             f"/api/events?topic=release:{rid}&after=0&wait=0"]
    writes = [f"/api/releases/{rid}/vote", f"/api/releases/{rid}/promote",
              f"/api/releases/{rid}/cancel", f"/api/releases/{rid}/retry",
              f"/api/releases/{rid}/rollback", f"/api/chat/release-{rid}/messages",
              "/api/releases", "/api/wall/links"]
    for path in reads:
        assert (await screen.get(path))[0] in (401, 403), path
        assert (await bearer.get(path, headers=bearer_headers))[0] in (401, 403), path
    for path in writes:
        for headers in ({"Cookie": cookie}, bearer_headers):
            status, _ = await bearer.post(path, {"choice": "go", "text": "hi"},
                                          headers=headers)
            assert status in (401, 403), (path, headers, status)
    # The screen's own stream serves this release's topics and no other.
    for topic in ("wall", "chat:lobby", f"release:{rid + 1}", f"chat:release-{rid + 1}"):
        status, _ = await screen.get(f"/api/releases/{rid}/vote/events?topic={topic}"
                                     "&after=0&wait=0")
        assert status == 404, topic
        assert (await socket_reply(base_url, cookie, rid, topic))["reason"] == "unknown_topic"


async def test_a_revoked_wall_link_no_longer_opens_a_vote_screen(api, base_url):
    link, screen = await screen_of(api, base_url, show_chat=True)
    cookie = await link_cookie(base_url, link["token"])
    await api.delete(f"/api/wall/links/{link['id']}")
    assert (await screen.get("/api/releases/1/vote/screen"))[0] == 410
    assert (await screen.get("/api/releases/1/vote/events?topic=release:1&wait=0"))[0] == 401
    assert (await open_page(base_url, "/releases/1/vote", cookie)).code == 410
    assert (await open_page(base_url, f"/releases/1/vote?key={link['token']}")).code == 410


async def test_without_a_session_or_a_wall_link_the_vote_screen_sends_to_sign_in(
        api, anonymous_api, base_url):
    made = await make_link(api)
    assert (await anonymous_api.get("/api/releases/1/vote/screen"))[0] == 401
    response = await open_page(base_url, "/releases/1/vote")
    assert response.code == 302 and "/login" in response.headers["Location"]
    forged = made["token"][:-4] + "AAAA"
    assert (await open_page(base_url, f"/releases/1/vote?key={forged}")).code == 403
