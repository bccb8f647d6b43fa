"""The event stream end to end: resuming by cursor over all three transports, a restart,
two instances on one database, and a client too slow to keep up."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time

import psutil
import pytest
import tornado.httpclient

from services.settings import Settings
from tests.conftest import Api
from tests.handlers.eventkit import (
    RawWebSocket,
    collect,
    instance,
    make_release,
    next_message,
    ws_connect,
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Instances here share one database: none owns it alone."""
    return settings.replace(client_buffer_max_events=2000, exclusive_db=False)


def subscribe(topic: str, after: int) -> str:
    return json.dumps({"op": "subscribe", "topic": topic, "after": after})


async def publish_slowly(services, topic: str, count: int) -> None:
    for n in range(count):
        await services.events.publish(topic, "log", {"host": f"h{n % 7}", "line": f"{n}"})
        if n % 10 == 9:
            await asyncio.sleep(0.01)


async def by_websocket(base_url: str, token: str, topic: str, total: int) -> list[dict]:
    """Subscribe, drop the connection twice mid-way, resume with the last seq."""
    events: list[dict] = []
    for stop_at in (total // 5, total // 2, total):
        conn = await ws_connect(base_url, token)
        conn.write_message(subscribe(topic, events[-1]["seq"] if events else 0))
        events += await collect(conn, topic, stop_at)
        conn.close()
    return events


async def by_polling(api: Api, topic: str, total: int, wait: float) -> list[dict]:
    """Ask again with `next` each time; once, give up on a request half-way."""
    events: list[dict] = []
    cursor, abandoned = 0, False
    while cursor < total:
        if not abandoned and cursor > total // 3:
            abandoned = True
            with pytest.raises(tornado.httpclient.HTTPClientError):
                await api.client.fetch(
                    f"{api.base_url}/api/events?topic={topic}&after={cursor + 10**6}&wait=5",
                    headers={"Authorization": f"Bearer {api.token}"}, request_timeout=0.2)
        status, body = await api.get(f"/api/events?topic={topic}&after={cursor}&wait={wait}")
        assert status == 200, body
        events += body["events"]
        cursor = body["next"]
        if wait == 0:
            await asyncio.sleep(0.05)
    return events


async def test_every_transport_resumes_to_the_same_complete_list(
        services, base_url, admin_token, api):
    topic = await make_release(services)
    total = 400
    publisher = asyncio.ensure_future(publish_slowly(services, topic, total))
    websocket, long_polled, polled = await asyncio.gather(
        by_websocket(base_url, admin_token, topic, total),
        by_polling(api, topic, total, wait=5),
        by_polling(api, topic, total, wait=0))
    await publisher
    expected = await services.events.read(topic, 0)
    assert [e["seq"] for e in expected] == list(range(1, total + 1))
    assert websocket == expected
    assert long_polled == expected
    assert polled == expected


async def test_after_a_restart_an_old_cursor_is_replayed_from_the_database(
        settings, services, admin_token):
    topic = await make_release(services)
    async with instance(settings.replace(instance_id="first")) as (first, _):
        published = [await first.events.publish(topic, "log", {"n": n}) for n in range(300)]
    async with instance(settings.replace(instance_id="second")) as (second, url):
        assert second.events.stats()["events_in_memory"] == 0
        conn = await ws_connect(url, admin_token)
        conn.write_message(subscribe(topic, 120))
        assert await collect(conn, topic, 300) == published[120:]
        conn.close()
        _, body = await Api(url, admin_token).get(f"/api/events?topic={topic}&after=250")
        assert body["events"] == published[250:]
        event = await second.events.publish(topic, "log", {"n": 300})
        assert event["seq"] == 301


async def test_a_client_of_another_instance_receives_a_releases_events(
        settings, services, base_url, admin_token):
    topic = await make_release(services)
    async with instance(settings.replace(instance_id="other")) as (_, other_url):
        conn = await ws_connect(other_url, admin_token)
        conn.write_message(subscribe(topic, 0))
        assert (await next_message(conn))["events"] == []
        poll = asyncio.ensure_future(Api(other_url, admin_token).get(
            f"/api/events?topic={topic}&after=0&wait=20"))
        await asyncio.sleep(0.2)
        started = time.monotonic()
        await publish_slowly(services, topic, 200)
        received = await collect(conn, topic, 200)
        conn.close()
        assert received == await services.events.read(topic, 0)
        _, body = await poll
        assert body["events"] and body["events"] == received[:len(body["events"])]
        assert time.monotonic() - started < 10


async def test_chat_written_on_both_instances_reads_the_same_everywhere(
        settings, services, base_url, admin_token):
    async with instance(settings.replace(instance_id="other")) as (other, other_url):
        conns = [await ws_connect(url, admin_token) for url in (base_url, other_url)]
        for conn in conns:
            conn.write_message(subscribe("chat:lobby", 0))
            assert (await next_message(conn))["events"] == []
        await asyncio.gather(*(bus.publish("chat:lobby", "message", {"text": f"{n}"})
                               for n in range(40) for bus in (services.events, other.events)))
        streams = [await collect(conn, "chat:lobby", 80) for conn in conns]
        for conn in conns:
            conn.close()
    assert [e["seq"] for e in streams[0]] == list(range(1, 81))
    assert streams[0] == streams[1]


@pytest.mark.slow
async def test_a_client_that_stops_reading_is_cut_off_without_holding_up_others(
        settings, services, base_url, admin_token):
    topic = await make_release(services)
    process = psutil.Process()
    key = base64.b64encode(os.urandom(16)).decode()
    slow, status, _ = await RawWebSocket.handshake(base_url, admin_token, key,
                                                   receive_buffer=4096)
    assert status == 101
    slow.send_text(subscribe(topic, 0))
    assert (await slow.read_json())[0]["events"] == []     # then it stops reading
    fast = await ws_connect(base_url, admin_token)
    fast.write_message(subscribe(topic, 0))
    assert (await next_message(fast))["events"] == []
    rss_before = process.memory_info().rss

    total, line = 10_000, "y" * 1000
    topic_log = await services.events.topic_log(topic)
    started = time.monotonic()
    reader = asyncio.ensure_future(collect(fast, topic, total, within=60))
    for n in range(total):
        await services.events.publish(topic, "log", {"n": n, "line": line})
        if n % 100 == 99:
            await asyncio.sleep(0.005)
    fast_events = await reader
    assert [e["seq"] for e in fast_events] == list(range(1, total + 1))
    assert time.monotonic() - started < 30
    assert len(topic_log.subscribers) == 1              # the slow one was cut off
    assert process.memory_info().rss - rss_before < 150 * 2**20
    fast.close()

    got: list[dict] = []
    while True:                                     # now it reads what it was sent
        frame, _ = await slow.read_json()
        if "error" in frame:
            break
        got += frame["events"]
    assert frame["reason"] == "cut_off" and frame["after"] == (got[-1]["seq"] if got else 0)
    slow.send_text(subscribe(topic, frame["after"]))
    while not got or got[-1]["seq"] < total:
        frame, _ = await slow.read_json()
        assert "error" not in frame, frame
        got += frame["events"]
    slow.close()
    assert [e["seq"] for e in got] == list(range(1, total + 1))


async def settled(services, topic: str) -> list[dict]:
    """The topic's events once nothing new came for a second."""
    events = await services.events.read(topic, 0)
    while True:
        await asyncio.sleep(1)
        again = await services.events.read(topic, 0)
        if again == events:
            return events
        events = again


@pytest.mark.slow
async def test_a_real_release_reads_the_same_over_every_transport(
        services, base_url, admin_token, api, make_fleet, app_repo):
    from tests.deploykit import deploy, register_fleet, register_project, wait_for

    await register_fleet(api, await make_fleet(3))
    await register_project(api, app_repo)
    release = await deploy(api, "v2")
    topic = f"release:{release['id']}"
    conn = await ws_connect(base_url, admin_token)           # while it runs
    conn.write_message(subscribe(topic, 0))
    websocket = await collect(conn, topic, 1)
    conn.close()
    _, first = await api.get(f"/api/events?topic={topic}&after=0&wait=10")
    assert first["events"]
    finished = await wait_for(api, release["id"])
    assert finished["state"] == "succeeded", finished
    expected = await settled(services, topic)
    types = {event["type"] for event in expected}
    assert {"release", "stage", "log"} <= types, types

    conn = await ws_connect(base_url, admin_token)           # resume by cursor
    conn.write_message(subscribe(topic, websocket[-1]["seq"]))
    websocket += await collect(conn, topic, expected[-1]["seq"])
    conn.close()
    long_polled, cursor = first["events"], first["next"]
    while cursor < expected[-1]["seq"]:
        _, page = await api.get(f"/api/events?topic={topic}&after={cursor}&wait=5")
        long_polled += page["events"]
        cursor = page["next"]
    _, polled = await api.get(f"/api/events?topic={topic}&after=0&wait=0")
    assert websocket == long_polled == polled["events"] == expected
