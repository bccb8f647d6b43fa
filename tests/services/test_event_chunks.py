"""Event chunk documents stay under a byte budget whatever the events (the database
refuses documents over 16 MiB; a chunk of big events once made one)."""

from __future__ import annotations

import asyncio

import bson
import pytest

BUDGET = 256 * 1024
EVENT_MAX = 64 * 1024


@pytest.fixture
def settings_overrides() -> dict:
    return {"event_chunk_max_bytes": BUDGET, "event_max_bytes": EVENT_MAX,
            "event_flush_max_events": 500}


async def stored_chunks(services, topic: str) -> list[dict]:
    return await services.store.events.find({"topic": topic}).sort("first_seq", 1).to_list(None)


async def test_no_event_chunk_exceeds_the_byte_budget_whatever_the_events(services):
    bus = services.events
    for index in range(200):
        await bus.publish("release:41", "log", {"line": f"{index:04d}" + "x" * 30_000})
    await bus._flusher.flush()
    chunks = await stored_chunks(services, "release:41")
    assert len(chunks) > 1
    assert max(len(bson.encode(chunk)) for chunk in chunks) <= BUDGET + 1024
    seqs = [event["seq"] for chunk in chunks for event in chunk["events"]]
    assert seqs == list(range(1, 201))


async def test_an_event_too_big_to_store_is_kept_as_a_stub_in_its_place(services):
    bus = services.events
    await bus.publish("release:42", "log", {"line": "small"})
    await bus.publish("release:42", "log", {"line": "B" * (EVENT_MAX + 1)})
    await bus.publish("release:42", "log", {"line": "after"})
    await bus._flusher.flush()
    events = [event for chunk in await stored_chunks(services, "release:42")
              for event in chunk["events"]]
    assert [event["seq"] for event in events] == [1, 2, 3]
    assert events[1]["data"]["unstorable"].endswith("too large to store")
    assert events[2]["data"] == {"line": "after"}


async def test_a_burst_on_a_shared_topic_is_stored_in_chunks_under_the_byte_budget(services):
    bus = services.events
    await asyncio.gather(*(bus.publish("chat:lobby", "message", {"text": f"{i:03d}" + "m" * 30_000})
                           for i in range(40)))
    chunks = await stored_chunks(services, "chat:lobby")
    assert len(chunks) > 1
    assert max(len(bson.encode(chunk)) for chunk in chunks) <= BUDGET + 1024
    texts = [event["data"]["text"][:3] for chunk in chunks for event in chunk["events"]]
    assert sorted(texts) == [f"{i:03d}" for i in range(40)]
