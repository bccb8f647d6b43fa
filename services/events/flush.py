"""The flusher: stores the events of topics this instance writes, in chunks, in order.

Events wait in memory (in their topic's window) until the next flush: every
`event_flush_interval_s` after the first unstored event, or at once when
`event_flush_max_events` are waiting. One flush turns each topic's unstored run into
chunks of at most `event_flush_max_events` events and `event_chunk_max_bytes` bytes
(EventStore.split) and stores them all with one ordered insert_many, so storage
sees tens of writes per second, not thousands. A failed flush keeps its chunks, with
the same boundaries and batch ids, and retries them first, with a growing delay:
nothing is reordered, nothing is stored twice. Head hints (storage.py) a quiet topic
still owes are raised once its interval is over, and at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from pymongo.errors import PyMongoError

from services.events.storage import HINT_INTERVAL_S, EventStore
from services.events.topics import TopicLog
from services.settings import Settings
from services.store import describe_db_error

log = logging.getLogger("ferry.events")


class Flusher:
    def __init__(self, settings: Settings, db: EventStore, counters: dict) -> None:
        self.settings = settings
        self.db = db
        self.counters = counters   # the bus's running totals: flushes, flush_seconds
        self._unbuilt: dict[str, tuple[TopicLog, int]] = {}  # events not yet in a chunk
        self._outbox: list[tuple[TopicLog, dict]] = []       # chunks not yet stored
        self._pending = 0
        self._has_pending = asyncio.Event()
        self._urgent = asyncio.Event()
        self._flushed = asyncio.Event()

    @property
    def idle(self) -> bool:
        return not (self._unbuilt or self._outbox)

    def added(self, topic_log: TopicLog) -> None:
        """One more event was appended to `topic_log` (and counted in its `unflushed`)."""
        unbuilt = self._unbuilt.get(topic_log.name)
        self._unbuilt[topic_log.name] = (topic_log, unbuilt[1] + 1 if unbuilt else 1)
        self._pending += 1
        if self._pending == 1:
            self._has_pending.set()
        elif self._pending >= self.settings.event_flush_max_events:
            self._urgent.set()

    async def room(self, topic_log: TopicLog, keep: int) -> None:
        """Wait until `topic_log` has fewer than `keep` unstored events (backpressure)."""
        while topic_log.unflushed >= keep:
            flushed = self._flushed
            self._urgent.set()
            await flushed.wait()

    async def run(self) -> None:
        delay = self.settings.event_flush_interval_s
        while True:
            if self.db.hints_waiting:   # raise the head hints a quiet topic still owes
                try:
                    async with asyncio.timeout(HINT_INTERVAL_S):
                        await self._has_pending.wait()
                except TimeoutError:
                    await self.db.write_hints()
                    continue
            await self._has_pending.wait()
            if self._pending < self.settings.event_flush_max_events:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.settings.event_flush_interval_s):
                        await self._urgent.wait()
            try:
                await self.flush()
                delay = self.settings.event_flush_interval_s
            except Exception as error:
                log.warning("could not store %d chunks of events (%s); retrying in %.1fs",
                            len(self._outbox), describe_db_error(error), delay)
                self._has_pending.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.settings.event_flush_retry_max_s)

    async def flush(self) -> None:
        """Turn unstored events into chunks and store them, in order."""
        self._has_pending.clear()
        self._urgent.clear()
        for topic_log, count in self._unbuilt.values():
            for run in self.db.split(topic_log.events[-count:]):
                self._outbox.append((topic_log, self.db.chunk(topic_log.name, run)))
        self._unbuilt.clear()
        self._pending = 0
        if not self._outbox:
            return
        outbox = self._outbox
        started = time.monotonic()
        await self.db.insert([doc for _, doc in outbox])
        self.counters["flushes"] += 1
        self.counters["flush_seconds"] += time.monotonic() - started
        self._outbox = []
        for topic_log, doc in outbox:
            topic_log.unflushed -= len(doc["events"])
        flushed, self._flushed = self._flushed, asyncio.Event()
        flushed.set()

    async def drain(self, grace_s: float) -> None:
        """At shutdown: store everything, retrying connection errors for `grace_s`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace_s
        while not self.idle:
            try:
                await self.flush()
            except PyMongoError:
                if loop.time() > deadline:
                    log.error("could not store %d chunks of events before stopping",
                              len(self._outbox))
                    return
                await asyncio.sleep(0.2)
        await self.db.write_hints()
