"""Notifications out, against a local HTTP receiver started by each test: signatures as each
provider documents them, retries, the rate limit, the outbound address policy."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import urllib.parse

import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.deploykit import deploy_and_wait, register_fleet, register_project

SECRET = "channel-secret-0123456789"
ALLOW_PRIVATE = {"notify_allow_private": True, "notify_backoff_s": 0.1}


class Receiver:
    """A local HTTP endpoint that records what it receives and answers `status`."""

    def __init__(self) -> None:
        self.requests: list[tornado.httputil.HTTPServerRequest] = []
        self.status = 200
        self.arrived = asyncio.Event()
        receiver = self

        class Handler(tornado.web.RequestHandler):
            def post(self) -> None:
                receiver.requests.append(self.request)
                receiver.arrived.set()
                self.set_status(receiver.status)
                if receiver.status in (301, 302):
                    self.set_header("Location", receiver.url + "/elsewhere")
                self.finish("{}")

        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        self.server = tornado.httpserver.HTTPServer(tornado.web.Application([(r".*", Handler)]))
        self.server.add_sockets(sockets)
        self.url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"

    async def wait_for(self, count: int, timeout: float = 60) -> None:
        async with asyncio.timeout(timeout):
            while len(self.requests) < count:
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def receiver():
    receiver = Receiver()
    yield receiver
    receiver.server.stop()


@pytest.fixture
async def project(api, app_repo):
    await register_project(api, app_repo)
    return "app"


async def add_channel(api, receiver: Receiver, kind: str, **fields) -> dict:
    status, channel = await api.post("/api/projects/app/notifications", {
        "kind": kind, "url": receiver.url + "/hook", **fields})
    assert status == 201, channel
    return channel


async def deliveries(api, channel: dict) -> list[dict]:
    status, body = await api.get(f"/api/projects/app/notifications/{channel['id']}/deliveries")
    assert status == 200
    return body["deliveries"]


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_the_generic_webhook_carries_a_valid_hmac_for_each_release_event(
        api, receiver, project, make_fleet):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await add_channel(api, receiver, "webhook", secret=SECRET)
    release = await deploy_and_wait(api, "v1")
    await receiver.wait_for(2)
    events = []
    for request in receiver.requests:
        expected = hmac.new(SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert request.headers["X-Ferry-Signature-256"] == f"sha256={expected}"
        body = json.loads(request.body)
        assert body["release"]["id"] == release["id"]
        events.append(body["event"])
    assert events == ["release.started", "release.succeeded"]


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_dingtalk_is_signed_with_its_documented_algorithm(api, receiver, project):
    channel = await add_channel(api, receiver, "dingtalk", secret=SECRET)
    status, _ = await api.post(f"/api/projects/app/notifications/{channel['id']}/test")
    assert status == 202
    await receiver.wait_for(1)
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(receiver.requests[0].uri).query)
    timestamp, sign = query["timestamp"][0], query["sign"][0]
    to_sign = f"{timestamp}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(SECRET.encode(), to_sign, hashlib.sha256).digest())
    assert sign == expected.decode()
    body = json.loads(receiver.requests[0].body)
    assert body["msgtype"] == "text" and "test message" in body["text"]["content"]


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_feishu_is_signed_with_its_own_documented_algorithm(api, receiver, project):
    channel = await add_channel(api, receiver, "feishu", secret=SECRET)
    await api.post(f"/api/projects/app/notifications/{channel['id']}/test")
    await receiver.wait_for(1)
    body = json.loads(receiver.requests[0].body)
    key = f"{body['timestamp']}\n{SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    assert body["sign"] == expected
    assert body["msg_type"] == "text"


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_a_failing_receiver_is_retried_and_the_release_still_ends(
        api, receiver, project, make_fleet):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    receiver.status = 500
    channel = await add_channel(api, receiver, "slack", events=["release.succeeded"])
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded"
    await receiver.wait_for(4)
    for _ in range(100):
        log = await deliveries(api, channel)
        if log:
            break
        await asyncio.sleep(0.1)
    assert log[0]["status"] == "failed" and log[0]["attempts"] == 4 and log[0]["code"] == 500


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_a_wecom_channel_never_sends_a_21st_message_within_a_minute(api, receiver,
                                                                          project):
    channel = await add_channel(api, receiver, "wecom")      # WeCom allows 20 a minute
    assert channel["rate_per_min"] == 20
    for _ in range(21):
        await api.post(f"/api/projects/app/notifications/{channel['id']}/test")
    await receiver.wait_for(20)
    await asyncio.sleep(1.5)
    assert len(receiver.requests) == 20


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_redirects_are_not_followed(api, receiver, project):
    receiver.status = 302
    channel = await add_channel(api, receiver, "webhook")
    await api.post(f"/api/projects/app/notifications/{channel['id']}/test")
    for _ in range(100):
        log = await deliveries(api, channel)
        if log:
            break
        await asyncio.sleep(0.1)
    assert "redirects are not followed" in log[0]["error"]
    assert [request.path for request in receiver.requests] == ["/hook"]


async def test_a_loopback_url_is_refused_unless_allowed(api, receiver, project):
    status, body = await api.post("/api/projects/app/notifications", {
        "kind": "webhook", "url": receiver.url + "/hook"})
    assert status == 400
    assert "loopback" in body["message"]


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_the_channel_secret_is_never_read_back(api, receiver, project):
    channel = await add_channel(api, receiver, "dingtalk", secret=SECRET)
    assert "secret" not in channel and channel["secret_set"] is True
    _, body = await api.get("/api/projects/app/notifications")
    assert SECRET not in json.dumps(body)


@pytest.mark.parametrize("settings_overrides", [ALLOW_PRIVATE])
async def test_bad_channel_fields_are_refused(api, receiver, project):
    for body in ({"kind": "telegram", "url": receiver.url},
                 {"kind": "slack", "url": "ftp://example.com/x"},
                 {"kind": "slack", "url": receiver.url, "events": ["release.exploded"]},
                 {"kind": "slack", "url": receiver.url, "rate_per_min": 0}):
        status, answer = await api.post("/api/projects/app/notifications", body)
        assert status == 400, answer
