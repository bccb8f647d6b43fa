"""EventBus without HTTP: seqs, batched storage, replay, long-poll, fan-out, instances."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable

import pymongo
import pytest

from services.events.bus import EventBus
from services.events.topics import TooManyTopics, UnknownTopic
from services.settings import Settings
from services.store import Store
from services.team.auth import User

VIEWER = User("viewer", "viewer")


async def release_exists(store: Store) -> Callable:
    async def check(topic: str, user: User) -> bool:
        _, _, rest = topic.partition(":")
        return rest.isdigit() and await store.releases.count_documents(
            {"_id": int(rest)}, limit=1) > 0
    return check


@pytest.fixture
async def open_bus(settings: Settings) -> AsyncIterator[Callable]:
    """Open EventBuses on the test's database (several = several instances); all closed
    and the database dropped at the end."""
    opened: list[tuple[EventBus, Store]] = []

    async def make(**changes) -> EventBus:
        bus_settings = settings.replace(**changes)
        store = Store(bus_settings.mongo_url, bus_settings.db_name)
        await store.ensure_indexes()
        bus = EventBus(bus_settings, store)
        await bus.open()
        bus.register_topic("release:", await release_exists(store))
        opened.append((bus, store))
        return bus

    yield make
    for bus, store in opened:
        if not bus._closed:
            await bus.close()
        await store.close()
    client = pymongo.AsyncMongoClient(settings.mongo_url)
    await client.drop_database(settings.db_name)
    await client.close()


async def stored_events(bus: EventBus, topic: str) -> list[dict]:
    docs = await bus.store.events.find({"topic": topic}).sort("first_seq", 1).to_list(None)
    return [event for doc in docs for event in doc["events"]]


async def eventually(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_publish_numbers_a_topics_events_from_one(open_bus):
    bus = await open_bus()
    first = await bus.publish("release:1", "log", {"line": "a"})
    second = await bus.publish("release:1", "log", {"line": "b"})
    other = await bus.publish("release:2", "log", {"line": "c"})
    assert [first["seq"], second["seq"], other["seq"]] == [1, 2, 1]
    assert set(first) == {"topic", "seq", "type", "ts", "data"}
    assert first["topic"] == "release:1" and first["type"] == "log"
    assert isinstance(first["ts"], float) and abs(first["ts"] - time.time()) < 5


async def test_read_returns_only_events_after_the_cursor(open_bus):
    bus = await open_bus()
    for n in range(10):
        await bus.publish("release:1", "log", {"n": n})
    events = await bus.read("release:1", 7)
    assert [e["seq"] for e in events] == [8, 9, 10]
    assert [e["seq"] for e in await bus.read("release:1", 0, limit=3)] == [1, 2, 3]
    assert await bus.read("release:1", 10) == []


async def test_thousands_of_publishes_are_stored_in_few_chunks(open_bus):
    bus = await open_bus(event_flush_max_events=500)
    for n in range(20_000):
        await bus.publish("release:1", "log", {"host": f"h{n % 1000}", "line": "x" * 80})
    await eventually(lambda: _stored_count(bus, "release:1", 20_000), timeout=15)
    chunks = await bus.store.events.count_documents({"topic": "release:1"})
    assert chunks <= 20_000 // 100
    docs = await bus.store.events.find({"topic": "release:1"}).to_list(None)
    assert max(len(doc["events"]) for doc in docs) <= 500


async def _stored_count(bus: EventBus, topic: str, expected: int) -> bool:
    return len(await stored_events(bus, topic)) == expected


async def test_a_lone_event_is_stored_without_more_arriving(open_bus):
    bus = await open_bus()
    await bus.publish("release:1", "state", {"state": "running"})
    await eventually(lambda: _stored_count(bus, "release:1", 1), timeout=5)


async def test_stored_chunks_are_consecutive_runs_of_one_topic(open_bus):
    bus = await open_bus(event_flush_max_events=50)
    for n in range(180):
        await bus.publish("release:1", "log", {"n": n})
        await bus.publish("release:2", "log", {"n": n})
    await eventually(lambda: _stored_count(bus, "release:2", 180))
    docs = await bus.store.events.find({"topic": "release:1"}).sort("first_seq", 1).to_list(None)
    expected_first = 1
    for doc in docs:
        seqs = [e["seq"] for e in doc["events"]]
        assert seqs == list(range(doc["first_seq"], doc["last_seq"] + 1))
        assert doc["first_seq"] == expected_first
        expected_first = doc["last_seq"] + 1
    assert expected_first == 181


async def test_an_old_cursor_is_replayed_from_the_database(open_bus):
    bus = await open_bus(event_memory_per_topic=100, event_flush_max_events=40)
    for n in range(1000):
        await bus.publish("release:1", "log", {"n": n})
    await eventually(lambda: _stored_count(bus, "release:1", 1000))
    assert bus.stats()["events_in_memory"] <= 2 * 100
    events = await bus.read("release:1", 10, limit=500)
    assert [e["seq"] for e in events] == list(range(11, 511))
    assert [e["data"]["n"] for e in events[:3]] == [10, 11, 12]
    tail = await bus.read("release:1", 950)
    assert [e["seq"] for e in tail] == list(range(951, 1001))


async def test_a_restarted_bus_replays_from_the_database_and_goes_on_numbering(open_bus):
    bus = await open_bus()
    published = [await bus.publish("release:1", "log", {"n": n}) for n in range(30)]
    await bus.close()
    again = await open_bus()
    assert await again.read("release:1", 0) == published
    assert await again.read("release:1", 25) == published[25:]
    event = await again.publish("release:1", "log", {"n": 30})
    assert event["seq"] == 31


async def test_wait_answers_at_once_when_events_exist(open_bus):
    bus = await open_bus()
    await bus.publish("release:1", "log", {})
    events = await asyncio.wait_for(bus.wait("release:1", 0, 60), 30)   # not after 60 s
    assert [e["seq"] for e in events] == [1]


async def test_wait_returns_nothing_after_the_timeout(open_bus):
    bus = await open_bus()
    started = time.monotonic()
    assert await bus.wait("release:1", 0, 0.5) == []
    assert time.monotonic() - started >= 0.45      # it waited
    assert bus.stats()["waiters"] == 0


async def test_wait_wakes_up_when_an_event_is_published(open_bus):
    bus = await open_bus()
    waiting = asyncio.create_task(bus.wait("release:1", 0, 10))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    await bus.publish("release:1", "log", {"line": "now"})
    events = await asyncio.wait_for(waiting, 2)
    assert [e["data"]["line"] for e in events] == ["now"]


async def test_a_cancelled_wait_leaves_no_waiter_behind(open_bus):
    bus = await open_bus()
    waiting = asyncio.create_task(bus.wait("release:1", 0, 10))
    await asyncio.sleep(0.1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert bus.stats()["waiters"] == 0


async def test_unknown_and_malformed_topics_are_refused(open_bus):
    bus = await open_bus()
    await bus.store.releases.insert_one({"_id": 1, "project": "p", "state": "running"})
    await bus.authorize("release:1", VIEWER)
    await bus.authorize("wall", VIEWER)
    await bus.authorize("chat:release-1", VIEWER)
    for topic in ("release:2", "release:x", "nope", "chat:", "chat:a b", "wall2", "x" * 300):
        with pytest.raises(UnknownTopic if " " not in topic and len(topic) < 200
                           else Exception) as error:
            await bus.authorize(topic, VIEWER)
        assert str(error.value)


async def test_a_subscriber_gets_the_replay_then_live_events_without_gap(open_bus):
    bus = await open_bus(fanout_tick_s=0.02)
    frames: list[dict] = []

    async def send(frame: bytes) -> None:
        frames.append(json.loads(frame))

    for n in range(50):
        await bus.publish("release:1", "log", {"n": n})
    subscriber = bus.subscriber(send, lambda: None)
    await bus.store.releases.insert_one({"_id": 1, "project": "p", "state": "running"})
    await subscriber.subscribe("release:1", 20, VIEWER)
    for n in range(50, 100):
        await bus.publish("release:1", "log", {"n": n})
        if n % 10 == 0:
            await asyncio.sleep(0.03)

    async def all_delivered() -> bool:
        return sum(len(f.get("events", [])) for f in frames) >= 80

    await eventually(all_delivered)
    seqs = [e["seq"] for f in frames for e in f["events"]]
    assert seqs == list(range(21, 101))
    assert len(frames) < 80       # coalesced into frames, not one frame per event
    subscriber.close()
    assert bus.stats()["subscribers"] == 0


async def test_a_subscriber_that_stops_reading_is_cut_off_and_resumes_by_cursor(open_bus):
    bus = await open_bus(fanout_tick_s=0.02, client_buffer_max_events=50)
    await bus.store.releases.insert_one({"_id": 1, "project": "p", "state": "running"})
    frames: list[dict] = []
    reading = asyncio.Event()
    reading.set()

    async def send(frame: bytes) -> None:
        await reading.wait()
        frames.append(json.loads(frame))

    subscriber = bus.subscriber(send, lambda: None)
    await subscriber.subscribe("release:1", 0, VIEWER)
    await bus.publish("release:1", "log", {"n": 0})
    await eventually(lambda: _has_events(frames))
    reading.clear()                       # the client stops reading
    for n in range(1, 400):
        await bus.publish("release:1", "log", {"n": n})
        if n % 20 == 0:
            await asyncio.sleep(0.03)
    await eventually(lambda: _no_topics(subscriber))
    reading.set()
    await eventually(lambda: _has_notice(frames))
    notice = next(f for f in frames if "error" in f)
    assert notice["reason"] == "cut_off" and notice["topic"] == "release:1"
    await subscriber.subscribe("release:1", notice["after"], VIEWER)

    async def caught_up() -> bool:
        return bool(frames) and any(e["seq"] == 400 for e in frames[-1].get("events", []))

    await eventually(caught_up)
    seqs = [e["seq"] for f in frames for e in f.get("events", [])]
    assert seqs == list(range(1, 401))
    subscriber.close()


async def _has_events(frames: list[dict]) -> bool:
    return any(f.get("events") for f in frames)


async def _has_notice(frames: list[dict]) -> bool:
    return any("error" in f for f in frames)


async def _no_topics(subscriber) -> bool:
    return subscriber.topics == []


async def test_a_connection_subscribes_to_a_bounded_number_of_topics(open_bus):
    bus = await open_bus(ws_max_topics=2)

    async def send(frame: bytes) -> None:
        pass

    subscriber = bus.subscriber(send, lambda: None)
    await subscriber.subscribe("chat:a", 0, VIEWER)
    await subscriber.subscribe("chat:b", 0, VIEWER)
    await subscriber.subscribe("chat:a", 0, VIEWER)       # again: still two
    with pytest.raises(TooManyTopics):
        await subscriber.subscribe("chat:c", 0, VIEWER)
    subscriber.close()


async def test_idle_topics_are_evicted_from_memory(open_bus):
    bus = await open_bus(event_topic_idle_s=0.2, event_max_topics_in_memory=5)
    for n in range(20):
        await bus.publish(f"release:{n}", "log", {})
    await eventually(lambda: _memory_topics_at_most(bus, 0), timeout=5)
    assert [e["seq"] for e in await bus.read("release:3", 0)] == [1]
    assert (await bus.publish("release:3", "log", {}))["seq"] == 2


async def _memory_topics_at_most(bus: EventBus, count: int) -> bool:
    return bus.stats()["topics_in_memory"] <= count


async def test_an_instance_that_owns_its_database_alone_opens_no_change_stream(open_bus):
    bus = await open_bus(exclusive_db=True)
    assert bus.stats()["change_stream"] is False


async def test_an_instance_sharing_its_database_follows_it_through_a_change_stream(open_bus):
    bus = await open_bus(exclusive_db=False)
    assert bus.stats()["change_stream"] is True


async def test_another_instance_receives_events_through_the_change_stream(open_bus):
    writer = await open_bus(instance_id="a", exclusive_db=False)
    reader = await open_bus(instance_id="b", exclusive_db=False)
    assert await reader.read("release:1", 0) == []
    waiting = asyncio.create_task(reader.wait("release:1", 0, 10))
    published = [await writer.publish("release:1", "log", {"n": n}) for n in range(5)]
    first = await asyncio.wait_for(waiting, 5)
    assert first == published[:len(first)]
    await eventually(lambda: _read_equals(reader, "release:1", published))


async def _read_equals(bus: EventBus, topic: str, expected: list[dict]) -> bool:
    return await bus.read(topic, 0) == expected


async def test_shared_topics_get_unique_seqs_across_instances(open_bus):
    one = await open_bus(instance_id="a", exclusive_db=False)
    two = await open_bus(instance_id="b", exclusive_db=False)
    results = await asyncio.gather(*(
        bus.publish("chat:ops", "message", {"by": bus.settings.instance_id, "n": n})
        for n in range(60) for bus in (one, two)))
    assert sorted(e["seq"] for e in results) == list(range(1, 121))
    stored = await stored_events(one, "chat:ops")
    assert [e["seq"] for e in stored] == list(range(1, 121))
    await eventually(lambda: _read_equals(one, "chat:ops", stored))
    await eventually(lambda: _read_equals(two, "chat:ops", stored))


async def test_data_the_database_cannot_store_is_stored_as_text(open_bus):
    bus = await open_bus()
    await bus.publish("release:1", "log", {"fine": 1})
    await bus.publish("release:1", "log", {1: "an integer key BSON refuses"})
    await bus.publish("release:1", "log", {"fine": 3})
    await eventually(lambda: _stored_count(bus, "release:1", 3))
    stored = await stored_events(bus, "release:1")
    assert [e["seq"] for e in stored] == [1, 2, 3]
    assert "integer key" in stored[1]["data"]["unstorable"]
    assert stored[0]["data"] == {"fine": 1} and stored[2]["data"] == {"fine": 3}


async def test_a_transport_that_takes_frames_at_once_gets_every_event_in_order(open_bus):
    bus = await open_bus(fanout_tick_s=0.02)
    frames: list[dict] = []

    def take(frame: bytes) -> None:       # a socket that keeps up: no Future at all
        frames.append(json.loads(frame))

    subscriber = bus.subscriber(take, lambda: None)
    await subscriber.subscribe("chat:ops", 0, VIEWER)
    for n in range(30):
        await bus.publish("chat:ops", "message", {"n": n})
        if n % 7 == 0:
            await asyncio.sleep(0.03)

    async def all_delivered() -> bool:
        return sum(len(f.get("events", [])) for f in frames) >= 30

    await eventually(all_delivered)
    assert [e["data"]["n"] for f in frames for e in f["events"]] == list(range(30))
    assert await bus.db.head("chat:ops") == 30     # the head hint follows the writes
    subscriber.close()
