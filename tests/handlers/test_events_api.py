"""GET /api/events: long-polling and plain polling over the event bus."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import tornado.httpclient

from tests.handlers.eventkit import make_release


async def test_a_poll_answers_at_once_with_the_events_after_the_cursor(api, services):
    topic = await make_release(services)
    published = [await services.events.publish(topic, "log", {"n": n}) for n in range(5)]
    # Waiting out wait=30 would trip the 15 s bound: the answer came without waiting.
    status, body = await asyncio.wait_for(
        api.get(f"/api/events?topic={topic}&after=2&wait=30"), 15)
    assert status == 200
    assert body == {"topic": topic, "events": published[2:], "next": 5}


async def test_a_long_poll_with_nothing_new_answers_empty_after_wait_seconds(api, services):
    topic = await make_release(services)
    started = time.monotonic()
    status, body = await api.get(f"/api/events?topic={topic}&after=0&wait=2")
    elapsed = time.monotonic() - started
    assert status == 200 and body == {"topic": topic, "events": [], "next": 0}
    assert elapsed >= 1.9          # it waited (a loaded machine only makes it longer)


async def test_a_long_poll_answers_as_soon_as_an_event_is_published(api, services):
    topic = await make_release(services)
    request = asyncio.ensure_future(api.get(f"/api/events?topic={topic}&after=0&wait=30"))
    await asyncio.sleep(0.3)
    event = await services.events.publish(topic, "state", {"state": "done"})
    status, body = await asyncio.wait_for(request, 15)      # not after wait=30
    assert status == 200 and body["events"] == [event] and body["next"] == 1


async def test_plain_polling_answers_at_once_even_when_empty(api, services):
    topic = await make_release(services)
    status, body = await asyncio.wait_for(
        api.get(f"/api/events?topic={topic}&after=0&wait=0"), 20)
    assert status == 200 and body["events"] == []


async def test_limit_pages_through_the_events(api, services):
    topic = await make_release(services)
    for n in range(10):
        await services.events.publish(topic, "log", {"n": n})
    _, body = await api.get(f"/api/events?topic={topic}&after=0&limit=4")
    assert [e["seq"] for e in body["events"]] == [1, 2, 3, 4] and body["next"] == 4


@pytest.mark.parametrize("query, fragment", [
    ("", "topic"),
    ("topic=wall&after=x", "after"),
    ("topic=wall&after=-1", "after"),
    ("topic=wall&wait=31", "wait"),
    ("topic=wall&wait=nan", "wait"),
    ("topic=wall&wait=-1", "wait"),
    ("topic=wall&limit=0", "limit"),
    ("topic=a%20b", "topic"),
])
async def test_bad_arguments_get_400_with_a_message(api, query, fragment):
    status, body = await api.get(f"/api/events?{query}")
    assert status == 400 and fragment in body["message"]


async def test_an_unknown_topic_gets_404(api):
    status, body = await api.get("/api/events?topic=release:404")
    assert status == 404 and "release:404" in body["message"]
    status, body = await api.get("/api/events?topic=secrets")
    assert status == 404


async def test_a_release_topic_past_the_database_int64_is_unknown(api):
    status, body = await api.get("/api/events?topic=release:99999999999999999999999")
    assert status == 404 and "release:99999999999999999999999" in body["message"]


async def test_polling_needs_a_signed_in_user(anonymous_api):
    status, _ = await anonymous_api.get("/api/events?topic=wall")
    assert status == 401


async def test_polling_has_no_side_effects(api, services):
    topic = await make_release(services)
    for _ in range(3):
        await api.get(f"/api/events?topic={topic}&after=0")
    await asyncio.sleep(0.3)
    assert await services.store.events.count_documents({"topic": topic}) == 0
    assert await services.events.read(topic, 0) == []


async def test_a_client_that_goes_away_cancels_its_wait(base_url, admin_token, services):
    topic = await make_release(services)
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True)
    request = asyncio.ensure_future(client.fetch(
        f"{base_url}/api/events?topic={topic}&wait=20",
        headers={"Authorization": f"Bearer {admin_token}"}, request_timeout=0.5))
    with pytest.raises(tornado.httpclient.HTTPClientError):
        await request
    client.close()
    for _ in range(100):
        if services.events.stats()["waiters"] == 0:
            break
        await asyncio.sleep(0.02)
    assert services.events.stats()["waiters"] == 0


@pytest.mark.slow
async def test_a_thousand_concurrent_long_polls_are_held_and_all_answered(
        base_url, admin_token, services):
    topic = await make_release(services)
    client = tornado.httpclient.AsyncHTTPClient(force_instance=True, max_clients=1000)
    url = f"{base_url}/api/events?topic={topic}&after=0&wait=25"
    headers = {"Authorization": f"Bearer {admin_token}"}
    requests = [asyncio.ensure_future(client.fetch(url, headers=headers, request_timeout=60,
                                                   raise_error=False))
                for _ in range(1000)]
    deadline = time.monotonic() + 60
    while services.events.stats()["waiters"] < 1000:
        assert time.monotonic() < deadline, services.events.stats()
        assert not any(r.done() for r in requests), "a long-poll answered early"
        await asyncio.sleep(0.1)
    event = await services.events.publish(topic, "state", {"state": "done"})
    responses = await asyncio.gather(*requests)
    client.close()
    assert [r.code for r in responses] == [200] * 1000
    assert all(json.loads(r.body)["events"] == [event] for r in responses)
