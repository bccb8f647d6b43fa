"""/api/chat: posting, history paged backwards, the same messages on every transport,
resuming by cursor, limits, and rooms that exist only with their release or project."""

from __future__ import annotations

import asyncio

import pytest

from services.settings import Settings
from tests.handlers.chatkit import room_messages, user_api
from tests.handlers.eventkit import collect, next_message, ws_connect


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(chat_rate_burst=1000, fanout_tick_s=0.02)


def subscribe(topic: str, after: int = 0) -> str:
    import json
    return json.dumps({"op": "subscribe", "topic": topic, "after": after})


async def test_post_answers_201_with_the_stored_message(api):
    status, message = await api.post("/api/chat/lobby/messages", {"text": "hello"})
    assert status == 201, message
    assert set(message) >= {"id", "room", "user", "text", "ts", "kind"}
    assert (message["room"], message["user"], message["text"], message["kind"]) == (
        "lobby", "admin", "hello", "message")
    assert [m["id"] for m in await room_messages(api, "lobby")] == [message["id"]]


async def test_history_pages_backwards_oldest_first_within_a_page(api):
    ids = []
    for n in range(7):
        status, message = await api.post("/api/chat/lobby/messages", {"text": f"m{n}"})
        assert status == 201
        ids.append(message["id"])
    status, page = await api.get("/api/chat/lobby/messages?limit=3")
    assert [m["text"] for m in page["messages"]] == ["m4", "m5", "m6"]
    status, older = await api.get(f"/api/chat/lobby/messages?limit=3&before={page['before']}")
    assert [m["text"] for m in older["messages"]] == ["m1", "m2", "m3"]
    status, oldest = await api.get(f"/api/chat/lobby/messages?limit=3&before={older['before']}")
    assert [m["text"] for m in oldest["messages"]] == ["m0"]
    assert oldest["before"] is None


async def test_a_message_reaches_websocket_long_poll_and_poll_once_each_in_order(
        api, base_url, admin_token):
    conn = await ws_connect(base_url, admin_token)
    conn.write_message(subscribe("chat:lobby"))
    assert (await next_message(conn))["events"] == []
    long_poll = asyncio.ensure_future(api.get("/api/events?topic=chat:lobby&after=0&wait=20"))
    await asyncio.sleep(0.2)
    texts = [f"n{n}" for n in range(5)]
    for text in texts:
        assert (await api.post("/api/chat/lobby/messages", {"text": text}))[0] == 201
    over_ws = await collect(conn, "chat:lobby", 5)
    status, first_poll = await long_poll
    assert status == 200
    status, polled = await api.get("/api/events?topic=chat:lobby&after=0&wait=0")
    assert [e["data"]["text"] for e in over_ws] == texts
    assert [e["seq"] for e in over_ws] == [1, 2, 3, 4, 5]
    assert [e["data"]["text"] for e in polled["events"]] == texts
    assert first_poll["events"] and first_poll["events"][0]["data"]["text"] == "n0"
    assert [e["seq"] for e in first_poll["events"]] == list(
        range(1, len(first_poll["events"]) + 1))
    conn.close()


async def test_reconnect_with_a_cursor_gets_exactly_what_it_missed(api, base_url, admin_token):
    conn = await ws_connect(base_url, admin_token)
    conn.write_message(subscribe("chat:lobby"))
    await next_message(conn)
    for n in range(3):
        await api.post("/api/chat/lobby/messages", {"text": f"before {n}"})
    seen = await collect(conn, "chat:lobby", 3)
    conn.close()
    for n in range(4):
        await api.post("/api/chat/lobby/messages", {"text": f"missed {n}"})
    again = await ws_connect(base_url, admin_token)
    again.write_message(subscribe("chat:lobby", seen[-1]["seq"]))
    missed = await collect(again, "chat:lobby", 7)
    assert [e["data"]["text"] for e in missed] == [f"missed {n}" for n in range(4)]
    again.close()


async def test_a_script_message_is_stored_and_returned_as_text(api):
    text = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    status, message = await api.post("/api/chat/lobby/messages", {"text": text})
    assert status == 201
    assert message["text"] == text
    assert (await room_messages(api, "lobby"))[0]["text"] == text


async def test_a_2001_character_message_is_refused_with_a_reason(api):
    status, body = await api.post("/api/chat/lobby/messages", {"text": "x" * 2001})
    assert status == 400
    assert "2000" in body["message"]
    status, _ = await api.post("/api/chat/lobby/messages", {"text": "x" * 2000})
    assert status == 201


async def test_a_flood_past_the_rate_limit_gets_429_with_the_wait(services, base_url):
    viewer = await user_api(services, base_url, "vic", "viewer")
    burst = 5
    limiter = services.chat.messages.limiter      # this module raised it for the others
    limiter.burst, limiter.per_s = burst, 0.01   # slow refill: no timing in the test
    codes = [(await viewer.post("/api/chat/lobby/messages", {"text": f"{n}"}))
             for n in range(burst + 1)]
    assert [code for code, _ in codes[:burst]] == [201] * burst
    status, body = codes[-1]
    assert status == 429
    assert "wait" in body["message"] and body["retry_after"] >= 1


async def test_a_viewer_may_chat(services, base_url):
    viewer = await user_api(services, base_url, "vera", "viewer")
    status, message = await viewer.post("/api/chat/lobby/messages", {"text": "hi"})
    assert status == 201 and message["user"] == "vera"


async def test_rooms_exist_only_with_their_release_or_project(api, app_repo):
    from tests.deploykit import register_project
    assert (await api.post("/api/chat/project-app/messages", {"text": "x"}))[0] == 404
    assert (await api.post("/api/chat/release-1/messages", {"text": "x"}))[0] == 404
    assert (await api.post("/api/chat/random/messages", {"text": "x"}))[0] == 404
    await register_project(api, app_repo)
    assert (await api.post("/api/chat/project-app/messages", {"text": "x"}))[0] == 201
    assert (await api.get("/api/events?topic=chat:project-app&after=0"))[0] == 200
    assert (await api.get("/api/events?topic=chat:project-nope&after=0"))[0] == 404


async def test_anonymous_requests_are_refused(anonymous_api):
    assert (await anonymous_api.get("/api/chat/lobby/messages"))[0] == 401
    assert (await anonymous_api.post("/api/chat/lobby/messages", {"text": "x"}))[0] in (
        401, 403)


async def test_a_command_outside_a_release_room_is_refused(api):
    status, body = await api.post("/api/chat/lobby/messages", {"text": "/promote"})
    assert status == 400 and "release" in body["message"]
    assert await room_messages(api, "lobby") == []


async def test_double_slash_posts_a_literal_slash(api):
    status, message = await api.post("/api/chat/lobby/messages", {"text": "//promote"})
    assert status == 201 and message["text"] == "/promote"
