"""Hostile WebSocket traffic: oversized, binary, non-JSON, deeply nested and huge-number
frames, unknown ops, topics that do not exist or may not be read, too many topics, bad
origins and credentials in the URL. Each gets an error frame or a refused handshake; the
server keeps serving everyone else."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient
import tornado.websocket

from services.settings import Settings
from tests.handlers.eventkit import make_release, next_message, ws_connect, ws_url


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(ws_max_message_bytes=4096, ws_max_topics=3, fanout_tick_s=0.02)


@pytest.fixture
async def ws(base_url, admin_token):
    opened = []

    async def connect(token: str | None = admin_token, **headers: str):
        conn = await ws_connect(base_url, token, **headers)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


async def send(conn, message: str | bytes) -> dict:
    conn.write_message(message, binary=isinstance(message, bytes))
    return await next_message(conn)


async def still_serves(conn) -> None:
    assert await send(conn, json.dumps({"op": "subscribe", "topic": "wall", "after": 0})) == {
        "topic": "wall", "events": []}


async def test_an_oversized_frame_closes_only_that_socket(ws):
    victim, bystander = await ws(), await ws()
    victim.write_message("x" * 10_000)
    assert await victim.read_message() is None and victim.close_code == 1009
    await still_serves(bystander)


async def test_a_binary_frame_gets_an_error_and_the_socket_stays(ws):
    conn = await ws()
    assert (await send(conn, b"\x00\xff{}"))["reason"] == "bad_request"
    await still_serves(conn)


@pytest.mark.parametrize("message", ["not json", "{", "[1,", '{"op": NaN}',
                                     '{"op": "subscribe", "op": "unsubscribe"}'])
async def test_a_frame_that_is_not_json_we_take_gets_bad_json(ws, message):
    conn = await ws()
    assert (await send(conn, message))["reason"] == "bad_json"
    await still_serves(conn)


async def test_a_deeply_nested_frame_gets_bad_json_without_a_traceback(ws, caplog):
    conn = await ws()
    answer = await send(conn, "[" * 2000 + "]" * 2000)
    assert answer["reason"] == "bad_json" and "nested" in answer["error"]
    assert not [r for r in caplog.records if r.exc_info]
    await still_serves(conn)


@pytest.mark.parametrize("after", [str(2**64), "-1", "1.5", '"0"', "true", "1e400"])
async def test_a_subscribe_with_a_bad_cursor_is_refused(ws, after):
    conn = await ws()
    answer = await send(conn, f'{{"op": "subscribe", "topic": "wall", "after": {after}}}')
    assert answer["reason"] in ("bad_json", "bad_request")
    await still_serves(conn)


@pytest.mark.parametrize("op", ["publish", "SUBSCRIBE", None, 5, ["subscribe"], "__proto__"])
async def test_an_unknown_op_gets_unknown_op(ws, op):
    conn = await ws()
    assert (await send(conn, json.dumps({"op": op, "topic": "wall"})))["reason"] == "unknown_op"
    await still_serves(conn)


@pytest.mark.parametrize("topic", ["release:999", "secret", "admin:tokens", "chat:../x",
                                   "release:1\n", "wall\n", "x" * 3000, "", 5, ["wall"]])
async def test_a_topic_that_does_not_exist_or_is_malformed_is_refused(ws, topic):
    conn = await ws()
    answer = await send(conn, json.dumps({"op": "subscribe", "topic": topic, "after": 0}))
    assert answer["reason"] in ("unknown_topic", "bad_request"), answer
    await still_serves(conn)


async def test_subscribing_to_more_topics_than_allowed_is_refused(ws, services):
    topics = [await make_release(services, number) for number in (1, 2, 3, 4)]
    conn = await ws()
    for topic in topics[:3]:
        answer = await send(conn, json.dumps({"op": "subscribe", "topic": topic}))
        assert "error" not in answer, answer
    answer = await send(conn, json.dumps({"op": "subscribe", "topic": topics[3]}))
    assert answer["reason"] == "too_many_topics"


@pytest.mark.parametrize("origin", ["http://evil.example", "null", "http://127.0.0.1.evil.example"])
async def test_a_handshake_from_a_foreign_origin_is_refused(ws, origin):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws(Origin=origin)
    assert refused.value.code == 403


@pytest.mark.parametrize("query", ["token", "access_token"])
async def test_a_token_in_the_websocket_url_is_not_accepted(base_url, admin_token, query):
    request = tornado.httpclient.HTTPRequest(f"{ws_url(base_url)}?{query}={admin_token}")
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await tornado.websocket.websocket_connect(request)
    assert refused.value.code == 401


async def test_a_forged_token_cannot_open_a_websocket(base_url):
    with pytest.raises(tornado.httpclient.HTTPClientError) as refused:
        await ws_connect(base_url, "fy_forged")
    assert refused.value.code == 401
