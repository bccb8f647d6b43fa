"""Wall links are a credential for one screen: the wall's page, its reads and its topic,
and nothing else. Each attack on that scope is one test, named after it."""

from __future__ import annotations

import asyncio
import re
import secrets

import pytest
import tornado.httpclient
import tornado.websocket

from handlers import ROUTES
from handlers.access import ACCESS_ATTR
from services.settings import Settings
from tests.handlers.chatkit import user_api
from tests.handlers.wallkit import cookie_api, link_cookie, make_link, open_page

# The wall's own reads: the only places a wall token opens anything.
WALL_READS = {("GET", "/wall"), ("GET", "/api/wall"), ("GET", "/api/wall/events"),
              ("GET", "/wall/ws")}
VERBS = ("GET", "POST", "PUT", "DELETE")


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(wall_link_recheck_s=0.3)


def concrete_routes() -> list[tuple[str, str]]:
    """(verb, path) for every routed verb that needs a signed-in role, ids filled in."""
    found = []
    for pattern, handler, *_ in ROUTES:
        if pattern in (".*",):
            continue
        path = re.sub(r"\([^)]*\)", "1", pattern).replace("\\", "")
        for verb in VERBS:
            method = getattr(handler, verb.lower(), None)
            if method is None or getattr(method, ACCESS_ATTR, "public") == "public":
                continue
            found.append((verb, path))
    return found


async def call(base_url: str, verb: str, path: str, headers: dict) -> int:
    body = b"{}" if verb in ("POST", "PUT") else None
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, method=verb, body=body, raise_error=False, follow_redirects=False,
        headers={"Content-Type": "application/json", **headers},
        allow_nonstandard_methods=True)
    return response.code


async def test_a_wall_token_opens_no_other_endpoint_however_it_is_sent(api, base_url):
    link = await make_link(api)
    token = link["token"]
    cookie = await link_cookie(base_url, token)
    routes = concrete_routes()
    assert ("GET", "/api/releases/1/hosts/1/log") in routes
    for verb, path in routes:
        if (verb, path) in WALL_READS:
            continue
        for headers, query in (({"Authorization": f"Bearer {token}"}, ""),
                               ({"Cookie": cookie}, ""), ({}, f"?key={token}")):
            status = await call(base_url, verb, path + query, headers)
            assert status in (302, 401, 403, 404, 405), (verb, path, headers, status)
            if status == 302:                    # a page: off to sign in
                assert verb == "GET" and not path.startswith("/api/"), (verb, path)


async def test_a_wall_token_reads_no_other_topic(api, base_url):
    link = await make_link(api)
    screen = cookie_api(base_url, await link_cookie(base_url, link["token"]))
    for topic in ("release:1", "chat:lobby", "chat:release-1"):
        status, _ = await screen.get(f"/api/wall/events?topic={topic}&after=0&wait=0")
        assert status == 404, topic
    request = tornado.httpclient.HTTPRequest(
        base_url.replace("http", "ws") + "/wall/ws",
        headers={"Cookie": await link_cookie(base_url, link["token"])})
    conn = await tornado.websocket.websocket_connect(request)
    try:
        conn.write_message('{"op": "subscribe", "topic": "chat:lobby", "after": 0}')
        frame = await asyncio.wait_for(conn.read_message(), 10)
        assert '"reason":"unknown_topic"' in frame
    finally:
        conn.close()


async def test_forged_and_malformed_tokens_are_refused(anonymous_api, base_url):
    forged = "fw_" + secrets.token_urlsafe(32)
    assert (await open_page(base_url, f"/wall?key={forged}")).code == 403
    assert (await open_page(base_url, "/wall?key=fw_%0a<script>")).code == 403
    status, _ = await anonymous_api.get("/api/wall", headers={
        "Authorization": f"Bearer {forged}"})
    assert status == 401
    # A cookie not signed by this server is no cookie at all.
    status, _ = await anonymous_api.get("/api/wall", headers={
        "Cookie": f'ferry_wall="2|1:0|10:1700000000|10:ferry_wall|60:{forged}|{"0" * 64}"'})
    assert status == 401


async def test_a_revoked_link_is_refused_and_its_open_socket_closed(api, base_url):
    link = await make_link(api)
    cookie = await link_cookie(base_url, link["token"])
    request = tornado.httpclient.HTTPRequest(base_url.replace("http", "ws") + "/wall/ws",
                                             headers={"Cookie": cookie})
    conn = await tornado.websocket.websocket_connect(request)
    await api.delete(f"/api/wall/links/{link['id']}")
    try:
        while (message := await asyncio.wait_for(conn.read_message(), 10)) is not None:
            assert "revoked" in message or "events" in message
        assert conn.close_code == 4401
    finally:
        conn.close()
    assert (await open_page(base_url, link["path"])).code == 410
    assert (await open_page(base_url, "/wall", cookie)).code == 410
    screen = cookie_api(base_url, cookie)
    assert (await screen.get("/api/wall"))[0] == 410
    assert (await screen.get("/api/wall/events?topic=wall&after=0&wait=0"))[0] == 401


async def test_the_token_leaves_the_url_at_once_and_is_never_sent_as_referrer(api, base_url):
    link = await make_link(api)
    swap = await open_page(base_url, link["path"] + "&by=project&junk=%ff%fe")
    assert swap.code == 302 and swap.headers["Location"] == "/wall?by=project"
    assert swap.headers["Referrer-Policy"] == "no-referrer"
    cookie = swap.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and link["token"] not in cookie
    page = await open_page(base_url, "/wall?by=project", cookie.split(";")[0])
    assert page.code == 200 and page.headers["Referrer-Policy"] == "no-referrer"
    assert b'name="referrer" content="no-referrer"' in page.body
    assert link["token"].encode() not in page.body


@pytest.mark.parametrize("query", [
    "group=" + "g" * 5000, "by=host", "only=everything", "page=manual", "every=0",
    "every=99999999999999999999", "every=%D9%A3", "group=%0a", "group=" + "g" * 101,
])
async def test_an_oversized_or_unknown_wall_mode_is_a_400(api, base_url, query):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{base_url}/wall?{query}", raise_error=False, follow_redirects=False,
        headers={"Authorization": f"Bearer {api.token}"})
    assert response.code == 400, response.code
    assert b"Traceback" not in response.body


async def test_an_oversized_event_query_is_a_400(api):
    assert (await api.get("/api/wall/events?topic=wall&after=" + "9" * 5000))[0] == 400
    assert (await api.get("/api/wall/events?topic=wall&after=99999999999999999999"))[0] == 400
    assert (await api.get("/api/wall/events?topic=wall&wait=1e9"))[0] == 400


async def test_viewers_and_deployers_cannot_make_list_or_revoke_links(api, services,
                                                                     base_url):
    link = await make_link(api)
    for name, role in (("vera", "viewer"), ("dan", "deployer")):
        other = await user_api(services, base_url, name, role)
        assert (await other.post("/api/wall/links", {"name": "mine"}))[0] == 403
        assert (await other.get("/api/wall/links"))[0] == 403
        assert (await other.delete(f"/api/wall/links/{link['id']}"))[0] == 403
    assert (await api.get("/api/wall/links"))[1]["links"][0]["revoked_at"] is None


@pytest.mark.parametrize("body", [
    {"name": "tv\n"}, {"name": "a\x1b[2J"}, {"name": "x" * 101}, {"name": "   "}, {},
    {"name": 5}, {"name": "tv", "show_chat": "yes"}, {"name": "tv", "scopes": ["api"]},
])
async def test_a_link_body_that_is_not_plain_fields_is_a_400(api, body):
    status, reply = await api.post("/api/wall/links", body)
    assert status == 400, reply
    assert (await api.get("/api/wall/links"))[1]["links"] == []
