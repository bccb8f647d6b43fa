"""Events in the database: chunk documents, each a run of one topic's consecutive events.

    {topic, first_seq, last_seq, ts, writer, batch, events: [{topic, seq, type, ts, data}]}

A chunk holds at most `chunk_max` events and `chunk_max_bytes` bytes of them (see
`split`), so no chunk nears the database's 16 MiB document limit whatever the events;
an event bigger than `event_max_bytes` is stored as a stub that says so (the live
window still has it whole).

The unique index (topic, first_seq) is what keeps a topic's chunks from ever
overlapping: a chunk is only ever inserted at `first_seq = head + 1`, where `head`
is the `last_seq` of a chunk already stored, so a second writer that read the same
head collides on the index instead of writing the same seqs twice. Chunks therefore
tile the topic's seqs in commit order, which is also the order the change stream
delivers them to other instances.

Finding a topic's head without scanning its chunks: `counters` holds a hint
`{_id: "events_head:<topic>", value}` raised with $max after chunks are stored (never
ahead of what is stored), and the chunks after the hint are read by index range. The
hint also keeps a bound on the topic's chunk size (the writer's `chunk_max`, which no
chunk it builds exceeds), which bounds a replay's range query. A hint costs the database
a document write, so after a topic's first one this instance raises its hints at most
every HINT_INTERVAL_S (and when it stops): a lagging hint only means that finding the
head reads a few more chunks.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import Any

import bson
from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, DocumentTooLarge, DuplicateKeyError
from pymongo.operations import UpdateOne

from services.store import Store, describe_db_error

log = logging.getLogger("ferry.events")
HEAD_PREFIX = "events_head:"
DUPLICATE_KEY = 11000
EVENT_OVERHEAD = 16   # BSON bytes of an array entry's key and type besides the event
ERRMSG_MAX = 200      # a database's refusal message, as much as the server's log gets
HINT_INTERVAL_S = 5.0     # head hints of a topic already hinted are raised this often
HINTED_TOPICS_MAX = 4096  # topics remembered as hinted; past it all count as new again


class SeqConflict(Exception):
    """Another instance kept winning the race for a shared topic's next seqs."""


class EventStore:
    """Writes, finds and reads chunk documents for one instance."""

    def __init__(self, store: Store, instance_id: str, chunk_max: int,
                 chunk_max_bytes: int = 4 * 1024 * 1024,
                 event_max_bytes: int = 1024 * 1024) -> None:
        self.store = store
        self.collection = store.events
        self.instance_id = instance_id
        self.chunk_max = chunk_max   # no chunk holds more events than this
        self.chunk_max_bytes = max(1024, chunk_max_bytes)
        self.event_max_bytes = min(max(256, event_max_bytes), self.chunk_max_bytes)
        self._hints_waiting: dict[str, int] = {}   # topic: last seq stored, not hinted yet
        self._hinted: set[str] = set()             # topics this instance has hinted
        self._hinted_at = 0.0

    def split(self, events: list[dict]) -> list[list[dict]]:
        """Cut a run of consecutive events into chunk-sized runs: at most `chunk_max`
        events and `chunk_max_bytes` bytes each. An event too big to store alone is
        replaced (in the chunk only) by a stub with its topic, seq, type and size."""
        runs: list[list[dict]] = []
        run: list[dict] = []
        size = 0
        for event in events:
            event_size = _encoded_size(event) + EVENT_OVERHEAD
            if event_size > self.event_max_bytes:
                event = _stub(event, event_size)
                event_size = _encoded_size(event) + EVENT_OVERHEAD
            if run and (len(run) >= self.chunk_max or size + event_size > self.chunk_max_bytes):
                runs.append(run)
                run, size = [], 0
            run.append(event)
            size += event_size
        if run:
            runs.append(run)
        return runs

    def chunk(self, topic: str, events: list[dict], batch: str | None = None) -> dict:
        return {"topic": topic, "first_seq": events[0]["seq"], "last_seq": events[-1]["seq"],
                "ts": events[-1]["ts"], "writer": self.instance_id,
                "batch": batch or new_batch(), "events": events}

    async def head(self, topic: str) -> int:
        """The last seq stored for `topic` (0 when none)."""
        hint = await self.store.counters.find_one({"_id": HEAD_PREFIX + topic})
        head = int(hint["value"]) if hint else 0
        async for doc in self.collection.find({"topic": topic, "first_seq": {"$gt": head}},
                                              {"last_seq": 1, "_id": 0}):
            head = max(head, int(doc["last_seq"]))
        return head

    async def insert(self, docs: list[dict]) -> None:
        """Store chunks in order. Raises only for connection-type errors (retry all later).

        A duplicate that is our own chunk (a retry after a lost reply) counts as stored;
        one written by another instance is logged and dropped; a chunk the database
        refuses is tried once more with its data made plain, then dropped.
        """
        start = 0
        while start < len(docs):
            batch = docs[start:]
            try:
                await self.collection.insert_many(batch, ordered=True)
                stored, consumed = batch, len(batch)
            except DocumentTooLarge:         # only when a chunk was not built by split()
                for doc in batch:
                    if len(bson.encode(doc)) > self.chunk_max_bytes:
                        doc.pop("_id", None)
                        doc["events"] = [_stub(event, _encoded_size(event))
                                         for event in doc["events"]]
                continue
            except InvalidDocument:          # data BSON cannot hold: store it as text
                for doc in batch:
                    try:
                        bson.encode(doc)
                    except InvalidDocument:
                        _sanitize(doc)     # a second time, every event: then it encodes
                continue
            except BulkWriteError as error:
                failure = error.details["writeErrors"][0]
                index = failure["index"]
                stored, bad, consumed = batch[:index], batch[index], index + 1
                if failure.get("code") == DUPLICATE_KEY:
                    if await self._is_ours(bad):
                        stored.append(bad)
                elif not bad.get("sanitized"):
                    _sanitize(bad)
                    consumed = index
                else:
                    log.error("dropping events %s %d..%d the database refused (code %s): %s",
                              bad["topic"], bad["first_seq"], bad["last_seq"],
                              failure.get("code"), str(failure.get("errmsg"))[:ERRMSG_MAX])
            await self._advance_heads(stored)
            start += consumed

    async def append_shared(self, topic: str, events: list[dict], head: int, attempts: int,
                            batch: str) -> dict:
        """Give `events` the seqs after the stored head and store them as one chunk;
        returns the chunk. Its head hint is left to the caller (`advance_heads`, once
        the events are delivered: a hint only ever lags what is stored).

        `head` is the head this batch was first tried at and `batch` its id: call again
        with the same two after a connection error, so that a first try whose reply was
        lost is found (by its id) instead of stored twice. On a collision another
        instance wrote first: learn the new head and try again. Sets each "seq" in place.
        """
        origin = head
        for _ in range(attempts):
            for offset, event in enumerate(events, 1):
                event["seq"] = head + offset
            doc = self.chunk(topic, events, batch)
            try:
                await self.collection.insert_one(doc)
            except DuplicateKeyError:
                mine = await self.collection.find_one(
                    {"topic": topic, "first_seq": {"$gt": origin}, "batch": batch},
                    {"first_seq": 1, "last_seq": 1})
                if mine is None:
                    head = await self.head(topic)
                    continue
                for offset, event in enumerate(events):
                    event["seq"] = mine["first_seq"] + offset
                doc = {**doc, "first_seq": mine["first_seq"], "last_seq": mine["last_seq"]}
            return doc
        raise SeqConflict(f"could not append to {topic} after {attempts} attempts")

    async def read(self, topic: str, after: int, upto: int, limit: int) -> list[dict]:
        """Stored events with after < seq <= upto, at most `limit`, in seq order."""
        hint = await self.store.counters.find_one({"_id": HEAD_PREFIX + topic})
        span = max(self.chunk_max, int(hint.get("size", 0)) if hint else 0)
        low = after + 1
        while low <= upto:
            high = min(upto, low + limit - 1)
            events = await self._read_window(topic, after, low - span, high, limit)
            if events:
                return events
            low = high + 1      # a gap in the stored seqs: look further
        return []

    async def _read_window(self, topic: str, after: int, floor: int, high: int,
                           limit: int) -> list[dict]:
        # No chunk is longer than `span`, so the one holding seq `low` starts after `floor`.
        query = {"topic": topic, "first_seq": {"$gt": floor, "$lte": high}}
        docs = await self.collection.find(query).sort("first_seq", 1).to_list(None)
        events: list[dict] = []
        for doc in docs:
            if doc["last_seq"] <= after:
                continue
            for event in doc["events"]:
                if after < event["seq"] <= high:
                    events.append(event)
                    if len(events) >= limit:
                        return events
        return events

    async def watch(self, resume_after: Any = None):
        """A change stream of chunks other instances insert."""
        pipeline = [{"$match": {"operationType": "insert",
                                "fullDocument.writer": {"$ne": self.instance_id}}}]
        return await self.collection.watch(pipeline, resume_after=resume_after,
                                           max_await_time_ms=1000)

    async def _is_ours(self, doc: dict) -> bool:
        existing = await self.collection.find_one(
            {"topic": doc["topic"], "first_seq": doc["first_seq"]}, {"batch": 1, "writer": 1})
        if existing is not None and existing.get("batch") == doc["batch"]:
            return True
        writer = existing.get("writer") if existing else "?"
        log.error("events %s %d..%d collide with a chunk written by %s; they are not stored "
                  "(two instances wrote one owned topic)", doc["topic"], doc["first_seq"],
                  doc["last_seq"], writer)
        return False

    async def advance_heads(self, docs: list[dict]) -> None:
        """Raise the head hints of the topics of `docs` (chunks that are stored)."""
        await self._advance_heads(docs)

    @property
    def hints_waiting(self) -> bool:
        """Stored chunks whose head hint is not raised yet (see `write_hints`)."""
        return bool(self._hints_waiting)

    async def _advance_heads(self, docs: list[dict]) -> None:
        for doc in docs:
            topic = doc["topic"]
            self._hints_waiting[topic] = max(self._hints_waiting.get(topic, 0),
                                             doc["last_seq"])
        if not self._hints_waiting:
            return
        if (time.monotonic() - self._hinted_at >= HINT_INTERVAL_S
                or not self._hinted.issuperset(self._hints_waiting)):
            await self.write_hints()

    async def write_hints(self) -> None:
        """Raise every waiting head hint now (the flusher calls this when the interval is
        over and nothing else is stored, and when it stops)."""
        heads, self._hints_waiting = self._hints_waiting, {}
        self._hinted_at = time.monotonic()
        if not heads:
            return
        operations = [UpdateOne({"_id": HEAD_PREFIX + topic},
                                {"$max": {"value": seq, "size": self.chunk_max}}, upsert=True)
                      for topic, seq in heads.items()]
        try:
            await self.store.counters.bulk_write(operations, ordered=False)
        except Exception as error:  # only a hint: a stale one costs a longer range read later
            log.warning("could not advance event head hints: %s", describe_db_error(error))
            return
        if len(self._hinted) + len(heads) > HINTED_TOPICS_MAX:
            self._hinted.clear()
        self._hinted.update(heads)


def new_batch() -> str:
    return uuid.uuid4().hex


def _encoded_size(event: dict) -> int:
    try:
        return len(bson.encode(event))
    except InvalidDocument:   # stored later as JSON text (see _sanitize): about its size
        return len(json.dumps(event, default=str)) + 64


def _stub(event: dict, size: int) -> dict:
    return {"topic": event["topic"], "seq": event["seq"], "type": str(event["type"]),
            "ts": event["ts"], "data": {"unstorable": f"event of {size} bytes, too large "
                                                      "to store"}}


def _sanitize(doc: dict) -> None:
    """Replace the data of events BSON cannot encode (all of them, when the database
    refused the chunk for a reason of its own) by its JSON text, which any database
    stores."""
    everything = doc.get("tried_once", False)
    doc.pop("_id", None)
    doc["sanitized"] = everything
    doc["tried_once"] = True
    events = []
    for event in doc["events"]:
        if not everything:
            try:
                bson.encode({"data": event["data"]})
                events.append(event)
                continue
            except InvalidDocument:
                pass
        events.append({"topic": doc["topic"], "seq": event["seq"], "type": str(event["type"]),
                       "ts": float(event["ts"]),
                       "data": {"unstorable": json.dumps(event["data"], default=str)}})
    doc["events"] = events
