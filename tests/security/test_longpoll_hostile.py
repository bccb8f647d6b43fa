"""Hostile long-poll parameters: cursors out of range, waits beyond the maximum, NaN and
Infinity, malformed or unknown topics, over-long query strings, and more waiters than
allowed. Each gets a 4xx or 503 with a message at once; nothing hangs."""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest


def events_path(**query: str) -> str:
    return "/api/events?" + urllib.parse.urlencode(query)


@pytest.mark.parametrize("after", ["-1", str(2**53), str(2**64), "1e3", "0x10", "NaN", "",
                                   "1.5", "١٢"])
async def test_a_cursor_out_of_range_or_not_a_number_gets_400(api, after):
    status, body = await api.get(events_path(topic="wall", after=after))
    assert status == 400 and "after" in body["message"]


@pytest.mark.parametrize("wait", ["31", "1e9", "inf", "nan", "-1", "-0.5", "forever"])
async def test_a_wait_beyond_the_maximum_or_not_a_number_gets_400(api, wait):
    status, body = await api.get(events_path(topic="wall", wait=wait))
    assert status == 400 and "wait" in body["message"]


@pytest.mark.parametrize("limit", ["0", "-5", "100000", "1e2", "x"])
async def test_a_limit_out_of_range_gets_400(api, limit):
    status, body = await api.get(events_path(topic="wall", limit=limit))
    assert status == 400 and "limit" in body["message"]


@pytest.mark.parametrize("topic", ["wall\n", "release:1\r\n", "wall wall", "chat:../etc",
                                   "x" * 300, "<script>", "wall\x00"])
async def test_a_malformed_topic_gets_400(api, topic):
    status, body = await api.get(events_path(topic=topic))
    assert status == 400 and "topic" in body["message"]


@pytest.mark.parametrize("topic", ["release:999", "secret", "admin:tokens"])
async def test_a_topic_that_does_not_exist_gets_404(api, topic):
    status, body = await api.get(events_path(topic=topic))
    assert status == 404 and body["message"]


async def test_a_missing_topic_gets_400(api):
    status, body = await api.get("/api/events?after=0")
    assert status == 400 and "topic" in body["message"]


async def test_an_over_long_query_string_gets_400(api):
    status, body = await api.get(events_path(topic="wall", pad="x" * 10_000))
    assert status == 400 and "query" in body["message"]


async def test_a_long_poll_without_credentials_gets_401(anonymous_api):
    status, _ = await anonymous_api.get(events_path(topic="wall", wait="5"))
    assert status == 401


@pytest.mark.parametrize("settings_overrides", [{"longpoll_max_waiters": 4}])
async def test_more_waiters_than_allowed_get_503_with_a_message(api):
    answers = await asyncio.gather(*(api.get(events_path(topic="wall", wait="3"))
                                     for _ in range(10)))
    statuses = [status for status, _ in answers]
    assert set(statuses) <= {200, 503} and statuses.count(503) >= 6, statuses
    assert all(body["message"] for status, body in answers if status == 503)
