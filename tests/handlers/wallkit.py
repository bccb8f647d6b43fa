"""Helpers for the wall's tests: wall links, a client holding a wall link's cookie,
reading the wall topic, and waiting for the wall's snapshot to show something."""

from __future__ import annotations

import asyncio
import time

import tornado.httpclient

from tests.conftest import Api


async def make_link(api: Api, name: str = "lobby TV") -> dict:
    status, link = await api.post("/api/wall/links", {"name": name})
    assert status == 201, link
    return link


async def link_cookie(base_url: str, token: str) -> str:
    """Open /wall?key=TOKEN as a TV would: the Cookie header it is given back."""
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{base_url}/wall?key={token}", follow_redirects=False, raise_error=False)
    assert response.code == 302, response.code
    cookies = response.headers.get_list("Set-Cookie")
    wall = [c.split(";")[0] for c in cookies if c.startswith("ferry_wall=")]
    assert wall, cookies
    return wall[0]


def cookie_api(base_url: str, cookie: str) -> Api:
    """An API client that sends only a cookie (no token)."""
    api = Api(base_url, None)
    original = api.request

    async def request(method, path, body=None, *, raw=None, headers=None):
        return await original(method, path, body, raw=raw,
                              headers={"Cookie": cookie, **(headers or {})})

    api.request = request
    return api


async def wall_events(api: Api, after: int) -> list[dict]:
    """Every `wall` event after `after`, by plain polling."""
    events: list[dict] = []
    while True:
        status, body = await api.get(f"/api/wall/events?topic=wall&after={after}&wait=0")
        assert status == 200, body
        if not body["events"]:
            return events
        events += body["events"]
        after = body["next"]


async def wait_for_wall(api: Api, check, within: float = 60) -> dict:
    """The first snapshot for which `check(snapshot)` is true (polling GET /api/wall)."""
    deadline = time.monotonic() + within
    while True:
        status, snapshot = await api.get("/api/wall")
        assert status == 200, snapshot
        if check(snapshot):
            return snapshot
        if time.monotonic() > deadline:
            raise AssertionError(f"the wall never got there: {snapshot}")
        await asyncio.sleep(0.1)


def states(snapshot: dict) -> dict[str, str]:
    return {host["name"]: host["state"] for host in snapshot["hosts"]}


async def open_page(base_url: str, path: str, cookie: str | None = None, **kwargs):
    """GET a page (HTML) with an optional Cookie header; the raw response."""
    headers = {"Cookie": cookie} if cookie else {}
    return await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, headers=headers, follow_redirects=False, raise_error=False, **kwargs)
