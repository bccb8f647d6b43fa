"""/ws: the RFC 6455 handshake and framing, an independent client, bad input, origins,
authentication on every subscribe, and a client that stops reading."""

from __future__ import annotations

import asyncio
import base64
import json
import os

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
import websockets.asyncio.client
import websockets.exceptions

from handlers.base import SESSION_COOKIE
from services.settings import Settings
from tests.handlers.eventkit import (
    RawWebSocket,
    accept_for,
    collect,
    make_release,
    next_message,
    ws_connect,
    ws_url,
)

ALLOWED_ORIGIN = "https://ferry.example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(allowed_origins=(ALLOWED_ORIGIN,), fanout_tick_s=0.02)


@pytest.fixture
async def ws(base_url, admin_token):
    """ws(token=admin, **headers): a Tornado WebSocket client to /ws, closed at the end."""
    opened = []

    async def connect(token: str | None = admin_token, **headers: str):
        conn = await ws_connect(base_url, token, **headers)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


async def test_raw_socket_handshake_and_frames_with_7_16_and_64_bit_lengths(
        services, base_url, admin_token):
    topic = await make_release(services)
    key = base64.b64encode(os.urandom(16)).decode()
    sock, status, headers = await RawWebSocket.handshake(base_url, admin_token, key)
    assert status == 101
    assert headers["upgrade"].lower() == "websocket"
    assert headers["sec-websocket-accept"] == accept_for(key)

    padded = json.dumps({"op": "subscribe", "topic": topic, "after": 0}) + " " * 300
    sock.send_text(padded)                     # a client frame with a 16-bit length
    ack, bits = await sock.read_json()
    assert ack == {"topic": topic, "events": []} and bits == 7

    sizes = {7: 0, 16: 5_000, 64: 100_000}
    for seq, (expected_bits, size) in enumerate(sizes.items(), 1):
        await services.events.publish(topic, "log", {"line": "x" * size})
        frame, bits = await sock.read_json()
        assert bits == expected_bits
        assert [e["seq"] for e in frame["events"]] == [seq]
        assert frame["events"][0]["data"]["line"] == "x" * size
    sock.close()


async def test_the_websockets_library_subscribes_and_receives_events(
        services, base_url, admin_token):
    topic = await make_release(services)
    published = [await services.events.publish(topic, "log", {"n": n}) for n in range(3)]
    async with websockets.asyncio.client.connect(
            ws_url(base_url), additional_headers={"Authorization": f"Bearer {admin_token}"}
    ) as conn:
        await conn.send(json.dumps({"op": "subscribe", "topic": topic, "after": 1}))
        first = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert first == {"topic": topic, "events": published[1:]}
        live = await services.events.publish(topic, "state", {"state": "done"})
        second = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert second == {"topic": topic, "events": [live]}


async def test_several_topics_share_one_socket(ws, services):
    one, two = await make_release(services, 1), await make_release(services, 2)
    conn = await ws()
    for topic in (one, two, "wall"):
        conn.write_message(json.dumps({"op": "subscribe", "topic": topic, "after": 0}))
    await services.events.publish(two, "log", {"n": 1})
    await services.events.publish("wall", "release", {"id": 2})
    seen: dict[str, list[int]] = {}
    while len(seen.get(two, [])) < 1 or len(seen.get("wall", [])) < 1:
        frame = await next_message(conn)
        seen.setdefault(frame["topic"], []).extend(e["seq"] for e in frame["events"])
    assert seen[two] == [1] and seen["wall"] == [1] and seen.get(one, []) == []
    conn.close()


async def test_unsubscribe_stops_delivery(ws, services):
    topic = await make_release(services)
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": topic, "after": 0}))
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    assert (await next_message(conn))["events"] == []
    assert (await next_message(conn))["events"] == []
    conn.write_message(json.dumps({"op": "unsubscribe", "topic": topic}))
    await asyncio.sleep(0.2)
    await services.events.publish(topic, "log", {})
    await services.events.publish("wall", "release", {})
    frame = await next_message(conn)
    assert frame["topic"] == "wall"
    conn.close()


@pytest.mark.parametrize("message, reason", [
    ("{not json", "bad_json"),
    ("[1, 2]", "bad_request"),
    ('{"op": "dance"}', "unknown_op"),
    ('{"op": "subscribe", "topic": "release:999", "after": 0}', "unknown_topic"),
    ('{"op": "subscribe", "topic": "nosuchkind", "after": 0}', "unknown_topic"),
    ('{"op": "subscribe", "topic": "wall", "after": -1}', "bad_request"),
    ('{"op": "subscribe", "topic": "wall", "after": "5"}', "bad_request"),
    ('{"op": "subscribe", "topic": "a b", "after": 0}', "bad_request"),
    ('{"op": "subscribe", "after": 0}', "bad_request"),
])
async def test_bad_messages_get_an_error_and_the_socket_keeps_serving(ws, message, reason):
    conn = await ws()
    conn.write_message(message)
    error = await next_message(conn)
    assert error["reason"] == reason and error["error"]
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    assert await next_message(conn) == {"topic": "wall", "events": []}
    conn.close()


async def test_a_10_mb_message_closes_that_socket_only(ws, services, base_url, admin_token):
    topic = await make_release(services)
    bystander = await ws()
    bystander.write_message(json.dumps({"op": "subscribe", "topic": topic, "after": 0}))
    assert (await next_message(bystander))["events"] == []
    async with websockets.asyncio.client.connect(
            ws_url(base_url), additional_headers={"Authorization": f"Bearer {admin_token}"},
            max_size=None) as conn:
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await conn.send("x" * (10 * 2**20))
            await asyncio.wait_for(conn.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009
    event = await services.events.publish(topic, "log", {"still": "here"})
    assert (await next_message(bystander))["events"] == [event]
    bystander.close()


async def test_a_cross_origin_handshake_is_refused(ws):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws(Origin="http://evil.example")
    assert refused.value.code == 403
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws(Origin="http://evil.example",
                         **{"Sec-Fetch-Site": "cross-site"})
    assert refused.value.code == 403


async def test_own_and_configured_origins_are_accepted(ws, base_url):
    for origin in (base_url, ALLOWED_ORIGIN):
        conn = await ws(Origin=origin)
        conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
        assert await next_message(conn) == {"topic": "wall", "events": []}
        conn.close()


async def test_an_anonymous_handshake_is_refused_before_the_upgrade(ws):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws(None)
    assert refused.value.code == 401


async def test_a_session_cookie_authenticates_the_socket(ws, services, base_url):
    user = await services.auth.user("admin")
    session = await services.auth.create_session(user)
    cookie = tornado.web.create_signed_value(
        services.settings.cookie_secret, SESSION_COOKIE, session).decode()
    conn = await ws(None, Cookie=f"{SESSION_COOKIE}={cookie}",
                            Origin=base_url)
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    assert await next_message(conn) == {"topic": "wall", "events": []}
    conn.close()


async def test_a_revoked_credential_cannot_subscribe_any_more(ws, services):
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    assert await next_message(conn) == {"topic": "wall", "events": []}
    async for token in services.store.tokens.find({}):      # revoked, as DELETE does
        await services.auth.tokens.revoke(token["user"], token["_id"])
    conn.write_message(json.dumps({"op": "subscribe", "topic": "chat:lobby", "after": 0}))
    error = await next_message(conn)
    assert error["reason"] == "unauthenticated"
    assert await asyncio.wait_for(conn.read_message(), 10) is None
    assert conn.close_code == 4401


async def test_a_subscriber_lives_exactly_as_long_as_its_socket(ws, services):
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    await next_message(conn)
    assert services.events.stats()["subscribers"] == 1
    conn.close()
    for _ in range(100):
        if services.events.stats()["subscribers"] == 0:
            break
        await asyncio.sleep(0.02)
    assert services.events.stats()["subscribers"] == 0


async def test_shutdown_closes_every_socket(ws, services):
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": "wall", "after": 0}))
    await next_message(conn)
    await services.events.close_clients()
    assert await asyncio.wait_for(conn.read_message(), 10) is None
    assert conn.close_code == 1001


async def test_reconnecting_with_the_last_seq_misses_nothing_and_repeats_nothing(ws, services):
    topic = await make_release(services)
    for n in range(40):
        await services.events.publish(topic, "log", {"n": n})
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": topic, "after": 0}))
    first = await collect(conn, topic, 40)
    conn.close()
    for n in range(40, 70):
        await services.events.publish(topic, "log", {"n": n})
    conn = await ws()
    conn.write_message(json.dumps({"op": "subscribe", "topic": topic,
                                   "after": first[-1]["seq"]}))
    second = await collect(conn, topic, 70)
    conn.close()
    assert first + second == await services.events.read(topic, 0)
