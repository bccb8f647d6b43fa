"""EventBus: ordered, resumable topics with batched persistence and batched fan-out.

Every event is `{"topic", "seq", "type", "ts", "data"}`; `seq` rises by one per
event of a topic, from 1. A reader holding cursor `after` (the last seq it has)
gets exactly the events after it, from memory or from the database, then live.

Seqs, and why nothing is duplicated or skipped across instances:
- Owned topics (`release:<id>` and any family not declared shared) are written by
  one instance at a time (the release's lease holder). It learns the stored head
  once, on its first publish, then numbers events in memory: `publish` costs no
  database round trip. A flusher stores them every `event_flush_interval_s` (or
  `event_flush_max_events`) as chunk documents through one ordered insert_many.
- Shared topics (`wall`, `chat:<room>`) may be written by any instance, so their
  seqs come from the database: a batch of concurrent publishes becomes one chunk
  inserted at `head + 1`, and the unique (topic, first_seq) index lets exactly one
  writer have each position (see event_store.py). Seqs are taken and stored in the
  same insert, so there is never a seq that was handed out but not written, and
  chunks become visible in seq order. `publish` on a shared topic waits for that
  insert (chat and the throttled wall summaries, not log lines).
- Other instances receive chunks through a change stream on the events collection.
  A chunk that does not follow the head in memory moves the memory window's start,
  so readers behind it read the missing part from the database: never a gap. An
  instance that owns its database alone (`exclusive_db`: the embedded one) opens none.

Memory: each topic keeps its newest `event_memory_per_topic` events; topics with
no reader and nothing unflushed are evicted after `event_topic_idle_s`, or first
when more than `event_max_topics_in_memory` are held. A topic with as many unstored
events as its window holds makes `publish` wait for the flusher (backpressure).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from pymongo.errors import OperationFailure, PyMongoError

from services.events.fanout import Subscriber, Wrap, Write
from services.events.flush import Flusher
from services.events.storage import EventStore, new_batch
from services.events.topics import (
    Overloaded,
    TopicCheck,
    TopicLog,
    TopicRegistry,
    chat_room,
    global_viewer,
)
from services.settings import Settings
from services.store import Store, describe_db_error

log = logging.getLogger("ferry.events")
EVICT_EVERY_S = 1.0
TICK_SLICE = 100   # subscribers notified between two yields to the loop


class EventBus:
    """Publish, read, long-poll and subscribe; owned by Services, one per instance."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.db = EventStore(store, settings.instance_id, settings.event_flush_max_events,
                             settings.event_chunk_max_bytes, settings.event_max_bytes)
        self.topics = TopicRegistry(settings.event_topic_max_chars)
        self.topics.register("wall", global_viewer, shared=True)
        self.topics.register("chat:", chat_room, shared=True)
        self._logs: dict[str, TopicLog] = {}
        self._loading: dict[str, asyncio.Task] = {}
        self._arrivals: dict[str, list[list[dict]]] = {}   # streamed in while loading
        self._dirty: set[TopicLog] = set()
        # Running totals for metrics (services/metrics reads them at scrape time).
        self.counters = {"cut_offs": 0, "flushes": 0, "flush_seconds": 0.0}
        self._flusher = Flusher(settings, self.db, self.counters)
        self._shared_queues: dict[str, list[tuple[dict, asyncio.Future]]] = {}
        self._subscribers: set[Subscriber] = set()
        self._waiters = 0
        self._observers: list[Callable[[dict], None]] = []
        self._tasks: list[asyncio.Task] = []
        self._stream = None
        self._closing = False
        self._closed = False

    # -- lifetime ---------------------------------------------------------------------

    async def open(self) -> None:
        """Start the flusher, the tick and, unless this instance owns its database alone,
        the change stream (before any topic is loaded)."""
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flusher.run(), name="event flusher"),
                       loop.create_task(self._tick_loop(), name="event fan-out tick")]
        if self.settings.exclusive_db:
            # No other instance writes this database's events: a change stream would cost
            # it a wake-up and an oplog scan per write (~9 % of the embedded database's
            # CPU during a release) to find nothing.
            return
        try:
            self._stream = await self.db.watch()
        except OperationFailure as error:    # e.g. a standalone mongod: no change streams
            log.warning("no change streams (%s): this instance will not see events other "
                        "instances write until it reads them from the database", error)
        else:
            self._tasks.append(loop.create_task(self._watch_loop(), name="event change stream"))

    async def close_clients(self) -> None:
        """Close every WebSocket subscriber and answer every long-poll now (shutdown)."""
        self._closing = True
        for subscriber in list(self._subscribers):
            subscriber.close_connection()
        for topic_log in self._logs.values():
            self._wake_waiters(topic_log)

    async def close(self) -> None:
        """Store everything published, then stop the background tasks."""
        self._closing = True
        if not self._tasks:           # never opened
            self._closed = True
            return
        flusher, *others = self._tasks
        flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await flusher
        writers = [t.writer for t in self._logs.values() if t.writer is not None]
        if writers:
            await asyncio.wait(writers, timeout=self.settings.shutdown_grace_s)
        await self._flusher.drain(self.settings.shutdown_grace_s)
        self._closed = True
        for subscriber in list(self._subscribers):
            subscriber.close()
        for task in others:
            task.cancel()
        for task in others:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._stream is not None:
            with contextlib.suppress(PyMongoError):
                await self._stream.close()

    # -- topics -----------------------------------------------------------------------

    def observe(self, observer: Callable[[dict], None]) -> None:
        """Call `observer(event)` for every event this instance publishes (metrics, tests).
        Observers run inline and must be quick and never raise."""
        self._observers.append(observer)

    def register_topic(self, prefix: str, check: TopicCheck, *, shared: bool = False) -> None:
        """Make a family of topics known: "wall" exactly, or "release:" as a prefix.

        `check(topic, user)` says whether the topic exists and the user may read it;
        it runs on every subscribe and poll. `shared=True` lets every instance write it.
        """
        self.topics.register(prefix, check, shared=shared)

    async def authorize(self, topic: str, user) -> None:
        """Raise UnknownTopic (404) unless `topic` exists and `user` may read it."""
        await self.topics.authorize(topic, user)

    async def head(self, topic: str) -> int:
        """The newest seq of `topic`: a snapshot taken now reflects every event up to it."""
        return (await self.topic_log(topic)).head

    async def topic_log(self, topic: str) -> TopicLog:
        """The topic's memory window, loaded (its head found in the database) on first use."""
        topic_log = self._logs.get(topic)
        if topic_log is None:
            task = self._loading.get(topic)
            if task is None:
                task = self._loading[topic] = asyncio.get_running_loop().create_task(
                    self._load(topic))
                self._arrivals[topic] = []
            topic_log = await asyncio.shield(task)
        topic_log.last_used = time.monotonic()
        return topic_log

    async def _load(self, topic: str) -> TopicLog:
        try:
            topic_log = TopicLog(topic, await self.db.head(topic),
                                 shared=self.topics.is_shared(topic))
            for events in self._arrivals.get(topic, []):
                topic_log.ingest(events)
            self._logs[topic] = topic_log
            return topic_log
        finally:
            self._loading.pop(topic, None)
            self._arrivals.pop(topic, None)

    # -- publishing ---------------------------------------------------------------------

    async def publish(self, topic: str, type: str, data: dict) -> dict:
        """Append an event to `topic` and return it. `data` must not change afterwards."""
        if self._closed:
            raise RuntimeError("the event bus is closed")
        topic_log = self._logs.get(topic)
        if topic_log is None or not topic_log.owned:
            topic_log = await self._own(topic)
        if topic_log.shared:
            return await self._publish_shared(topic_log, type, data)
        keep = self.settings.event_memory_per_topic
        if topic_log.unflushed >= keep:
            await self._flusher.room(topic_log, keep)
        event = {"topic": topic, "seq": topic_log.head + 1, "type": type, "ts": time.time(),
                 "data": data}
        topic_log.append(event)
        topic_log.unflushed += 1
        topic_log.last_used = time.monotonic()
        self._flusher.added(topic_log)
        if len(topic_log.events) > keep:
            topic_log.trim(keep)
        self._dirty.add(topic_log)
        for observe in self._observers:
            observe(event)
        return event

    async def _own(self, topic: str) -> TopicLog:
        """The topic's window, ready for this instance to write (head checked once)."""
        fresh = topic not in self._logs
        topic_log = await self.topic_log(topic)
        if not fresh and not topic_log.owned and not topic_log.shared:
            head = await self.db.head(topic)   # another instance may have written it
            if not topic_log.owned and head > topic_log.head and not topic_log.unflushed:
                topic_log.reset(head)
                self._dirty.add(topic_log)
        topic_log.owned = True
        return topic_log

    async def _publish_shared(self, topic_log: TopicLog, type: str, data: dict) -> dict:
        event = {"topic": topic_log.name, "seq": 0, "type": type, "ts": time.time(),
                 "data": data}
        future = asyncio.get_running_loop().create_future()
        self._shared_queues.setdefault(topic_log.name, []).append((event, future))
        if topic_log.writer is None:
            topic_log.writer = asyncio.get_running_loop().create_task(
                self._write_shared(topic_log), name=f"events {topic_log.name}")
        event = await future
        for observe in self._observers:
            observe(event)
        return event

    async def _write_shared(self, topic_log: TopicLog) -> None:
        queue = self._shared_queues[topic_log.name]
        try:
            while queue:
                batch = queue[:self.settings.event_flush_max_events]
                # One chunk per batch: as many events as fit its byte budget (at least one).
                batch = batch[:len(self.db.split([event for event, _ in batch])[0])]
                del queue[:len(batch)]
                events = [event for event, _ in batch]
                try:
                    chunk = await self._append_shared(topic_log, events)
                except Exception as error:
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                self._arrive(topic_log, events)
                for event, future in batch:
                    if not future.done():
                        future.set_result(event)
                # Stored and delivered: the head hint is raised after, off the publishers'
                # path (it only ever lags what is stored; see EventStore.head).
                await self.db.advance_heads([chunk])
        finally:
            topic_log.writer = None
            if not queue:
                self._shared_queues.pop(topic_log.name, None)

    async def _append_shared(self, topic_log: TopicLog, events: list[dict]) -> dict:
        """Store one batch as a chunk (returned); connection errors are retried for
        event_flush_retry_max_s."""
        head, batch, delay = topic_log.head, new_batch(), 0.05
        deadline = time.monotonic() + self.settings.event_flush_retry_max_s
        while True:
            try:
                return await self.db.append_shared(
                    topic_log.name, events, head, self.settings.event_shared_write_attempts,
                    batch)
            except PyMongoError as error:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("retrying a write to %s: %s", topic_log.name,
                            describe_db_error(error))
                await asyncio.sleep(delay)
                delay *= 2

    # -- reading ------------------------------------------------------------------------

    async def read(self, topic: str, after: int, limit: int | None = None) -> list[dict]:
        """Events after `after`, oldest first, at most `limit` (event_page_max)."""
        page = self.settings.event_page_max
        limit = page if limit is None else max(1, min(limit, page))
        topic_log = await self.topic_log(topic)
        if after >= topic_log.start:
            return topic_log.after(after, limit)
        upto = topic_log.start
        events = await self.db.read(topic, after, upto, limit)
        if len(events) < limit and topic_log.start <= upto:
            last = events[-1]["seq"] if events else after
            events += topic_log.after(max(last, upto), limit - len(events))
        return events

    async def wait(self, topic: str, after: int, timeout: float,  # noqa: ASYNC109 (the API)
                   limit: int | None = None, *, internal: bool = False) -> list[dict]:
        """Long-poll: the events after `after` at once if any, else the first to come
        within `timeout` seconds, else []. Cancel the call to give up waiting.

        `internal`: a follower inside Ferry (the chat narrator, the wall), a few per
        release at most; it does not count against `longpoll_max_waiters`, which bounds
        clients, so clients can never crowd Ferry's own followers out, nor they clients."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        counted = 0 if internal else 1
        while True:
            topic_log = await self.topic_log(topic)
            if counted and self._waiters >= self.settings.longpoll_max_waiters:
                raise Overloaded("too many requests are waiting for events; try again soon")
            woken = loop.create_future()
            topic_log.waiters.add(woken)
            self._waiters += counted
            try:
                events = await self.read(topic, after, limit)
                remaining = deadline - loop.time()
                if events or remaining <= 0 or self._closing:
                    return events
                async with asyncio.timeout(remaining):
                    await woken
            except TimeoutError:
                return []
            finally:
                topic_log.waiters.discard(woken)
                self._waiters -= counted

    def subscriber(self, write: Write, close_connection: Callable[[], None],
                   wrap: Wrap | None = None) -> Subscriber:
        """A live subscriber for one connection (see fanout.py); close() it with the socket."""
        subscriber = Subscriber(self, write, close_connection, wrap)
        self._subscribers.add(subscriber)
        return subscriber

    def forget_subscriber(self, subscriber: Subscriber) -> None:
        self._subscribers.discard(subscriber)

    def stats(self) -> dict:
        """Counts for operations and tests: what the bus holds right now."""
        return {"topics_in_memory": len(self._logs),
                "events_in_memory": sum(len(t.events) for t in self._logs.values()),
                "unstored_events": sum(t.unflushed for t in self._logs.values()),
                "subscribers": len(self._subscribers), "waiters": self._waiters,
                "change_stream": self._stream is not None}

    # -- fan-out and the change stream --------------------------------------------------

    async def _tick_loop(self) -> None:
        next_eviction = time.monotonic() + EVICT_EVERY_S
        while True:
            await asyncio.sleep(self.settings.fanout_tick_s)
            if self._dirty:
                dirty, self._dirty = self._dirty, set()
                for topic_log in dirty:
                    topic_log.tick()
                    self._wake_waiters(topic_log)
                    for count, subscriber in enumerate(list(topic_log.subscribers), 1):
                        subscriber.notify(topic_log)
                        if count % TICK_SLICE == 0:
                            await asyncio.sleep(0)     # let publishers and readers in
            now = time.monotonic()
            if now >= next_eviction:
                self._evict(now)
                next_eviction = now + EVICT_EVERY_S

    @staticmethod
    def _wake_waiters(topic_log: TopicLog) -> None:
        for future in topic_log.waiters:
            if not future.done():
                future.set_result(None)

    def _evict(self, now: float) -> None:
        idle = sorted((t for t in self._logs.values() if t.idle()), key=lambda t: t.last_used)
        excess = len(self._logs) - self.settings.event_max_topics_in_memory
        for index, topic_log in enumerate(idle):
            if index >= excess and now - topic_log.last_used < self.settings.event_topic_idle_s:
                break
            del self._logs[topic_log.name]
            self._dirty.discard(topic_log)

    def _arrive(self, topic_log: TopicLog, events: list[dict]) -> None:
        if topic_log.ingest(events):
            topic_log.trim(self.settings.event_memory_per_topic)
            self._dirty.add(topic_log)

    def _on_chunk(self, doc: dict) -> None:
        """A chunk another instance stored."""
        topic = doc["topic"]
        topic_log = self._logs.get(topic)
        if topic_log is None:
            arrivals = self._arrivals.get(topic)
            if arrivals is not None:
                arrivals.append(doc["events"])
        elif topic_log.unflushed:
            log.error("%s was written by %s while this instance writes it; ignoring %d..%d",
                      topic, doc.get("writer"), doc["first_seq"], doc["last_seq"])
        else:
            self._arrive(topic_log, doc["events"])

    async def _watch_loop(self) -> None:
        token, delay = None, 0.1
        while True:
            try:
                async for change in self._stream:
                    token = change["_id"]
                    self._on_chunk(change["fullDocument"])
                    delay = 0.1
            except PyMongoError:
                log.warning("event change stream failed; reopening", exc_info=True)
            with contextlib.suppress(PyMongoError):
                await self._stream.close()
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.settings.event_flush_retry_max_s)
            try:
                self._stream = await self.db.watch(token)
            except PyMongoError:
                with contextlib.suppress(PyMongoError):
                    self._stream = await self.db.watch()
                    token = None
                    await self._resync()

    async def _resync(self) -> None:
        """After the stream lost its place: move each window to the stored head."""
        for topic_log in list(self._logs.values()):
            if topic_log.unflushed or topic_log.writer:
                continue
            head = await self.db.head(topic_log.name)
            if head > topic_log.head:
                topic_log.reset(head)
                self._dirty.add(topic_log)
