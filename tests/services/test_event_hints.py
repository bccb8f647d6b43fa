"""Head hints of event topics (events/storage.py): raised at a topic's first chunk, then at
most every HINT_INTERVAL_S and when the bus stops; a hint that lags never makes a topic's
head wrong."""

from __future__ import annotations

from services.events.storage import HEAD_PREFIX


async def hint(services, topic: str) -> int | None:
    doc = await services.store.counters.find_one({"_id": HEAD_PREFIX + topic})
    return None if doc is None else doc["value"]


async def test_a_topics_first_chunk_raises_its_hint_at_once(services):
    bus = services.events
    await bus.publish("release:51", "log", {"line": "one"})
    await bus._flusher.flush()
    assert await hint(services, "release:51") == 1


async def test_a_lagging_hint_still_gives_the_stored_head(services):
    bus = services.events
    await bus.publish("release:52", "log", {"line": "one"})
    await bus._flusher.flush()
    for index in range(3):
        await bus.publish("release:52", "log", {"line": f"more {index}"})
        await bus._flusher.flush()
    assert await hint(services, "release:52") <= 4   # (1 until HINT_INTERVAL_S is over)
    assert await bus.db.head("release:52") == 4


async def test_hints_owed_are_written_when_the_bus_stops(services):
    bus = services.events
    await bus.publish("release:53", "log", {"line": "one"})
    await bus._flusher.flush()
    await bus.publish("release:53", "log", {"line": "two"})
    await bus._flusher.flush()
    await bus._flusher.drain(1.0)
    assert await hint(services, "release:53") == 2
