"""Hostile chat messages: markup, control bytes, overlong text, floods, odd types."""

from __future__ import annotations

import json

import pytest
import tornado.httpclient

from tests.handlers.chatkit import room_messages


async def test_markup_is_stored_and_served_as_json_text(api):
    text = '<script>alert(1)</script>"><svg onload=alert(1)>'
    status, message = await api.post("/api/chat/lobby/messages", {"text": text})
    assert status == 201 and message["text"] == text
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        api.base_url + "/api/chat/lobby/messages",
        headers={"Authorization": f"Bearer {api.token}"})
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert json.loads(response.body)["messages"][0]["text"] == text


async def test_control_bytes_and_direction_overrides_are_stripped(api):
    status, message = await api.post("/api/chat/lobby/messages", {
        "text": "a\x00b\x1b[31mc\x7f\u202ed\u2066e\r\nf\x85g"})
    assert status == 201
    assert message["text"] == "ab[31mcde\nf\ng"


async def test_a_message_of_only_control_bytes_is_refused(api):
    status, body = await api.post("/api/chat/lobby/messages", {"text": "\x00\x07\x1b \u202e"})
    assert status == 400 and "empty" in body["message"]


async def test_a_lone_surrogate_is_refused_or_dropped_never_stored(api):
    status, message = await api.post("/api/chat/lobby/messages",
                                     raw=b'{"text": "ok\\ud800"}')
    assert (status, message.get("text")) in ((201, "ok"), (400, None)), message


async def test_an_overlong_message_is_refused_and_nothing_is_stored(api):
    status, body = await api.post("/api/chat/lobby/messages", {"text": "é" * 2001})
    assert status == 400 and "2000" in body["message"]
    assert await room_messages(api, "lobby") == []


@pytest.mark.parametrize("settings_overrides", [{"chat_rate_per_s": 0.01}])  # no timing
async def test_a_flood_past_the_burst_gets_429_with_retry_after(api):
    client = tornado.httpclient.AsyncHTTPClient()
    codes, last = [], None
    for n in range(7):
        last = await client.fetch(api.base_url + "/api/chat/lobby/messages", method="POST",
                                  body=json.dumps({"text": f"spam {n}"}), raise_error=False,
                                  headers={"Authorization": f"Bearer {api.token}",
                                           "Content-Type": "application/json"})
        codes.append(last.code)
    assert codes[:5] == [201] * 5 and codes[5:] == [429, 429]
    assert int(last.headers["Retry-After"]) >= 1
    body = json.loads(last.body)
    assert "wait" in body["message"] and body["retry_after"] >= 1
    assert len(await room_messages(api, "lobby")) == 5


async def test_text_of_the_wrong_type_is_refused(api):
    for text in (None, 5, True, ["a"], {"$gt": ""}):
        status, body = await api.post("/api/chat/lobby/messages", {"text": text})
        assert status == 400 and "string" in body["message"], (text, body)


async def test_history_arguments_out_of_range_are_refused(api):
    for query in ("before=-1", "before=abc", "limit=0", "limit=100000", "before=1e3",
                  "limit=%00"):
        status, body = await api.get(f"/api/chat/lobby/messages?{query}")
        assert status == 400, (query, body)
