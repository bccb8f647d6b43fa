"""Topic names, who may read them, and one topic's recent events held in memory.

A `TopicLog` is the in-memory window of one topic: every event with
`start < seq <= head`, in seq order. Readers whose cursor is at or past `start`
are served from it; older cursors go to the database (see `event_store.py`).
The newest `unflushed` events of a topic this instance writes are not in the
database yet, so the window never drops them.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from services.errors import FerryError

if TYPE_CHECKING:
    from services.team.auth import User

TopicCheck = Callable[[str, "User"], Awaitable[bool]]
# Whole-string patterns: only ever used with fullmatch (a `$` would let "x\n" through).
TOPIC_NAME = re.compile(r"[A-Za-z0-9_.:@-]+")
CHAT_ROOM = re.compile(r"[A-Za-z0-9_.-]{1,64}")
FRAME_CACHE_ENTRIES = 4


class EventError(FerryError):
    """A refused subscribe or poll; `reason` is a stable code clients can switch on."""

    reason = "bad_request"


class UnknownTopic(EventError):
    status = 404
    reason = "unknown_topic"


class TooManyTopics(EventError):
    status = 400
    reason = "too_many_topics"


class Overloaded(EventError):
    status = 503
    reason = "overloaded"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def encode(value: Any) -> bytes:
    """Compact JSON, as UTF-8 bytes (what goes on the wire)."""
    return json.dumps(value, default=_json_default, separators=(",", ":")).encode()


def encode_frame(topic: str, events: list[dict]) -> bytes:
    return encode({"topic": topic, "events": events})


async def any_user(topic: str, user: User) -> bool:
    return True


async def global_viewer(topic: str, user: User) -> bool:
    """Topics about every project (the wall): users whose global role sees them all."""
    return user.can("viewer")


async def chat_room(topic: str, user: User) -> bool:
    return CHAT_ROOM.fullmatch(topic.split(":", 1)[1]) is not None


class TopicRegistry:
    """Known topic families: an exact name ("wall") or a prefix ending in ":" ("chat:")."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self._checks: dict[str, TopicCheck] = {}
        self._shared: set[str] = set()

    def register(self, prefix: str, check: TopicCheck, *, shared: bool = False) -> None:
        """Add or replace a family. A shared family keeps being shared once declared so."""
        self._checks[prefix] = check
        if shared:
            self._shared.add(prefix)

    def _family(self, topic: str) -> str | None:
        if topic in self._checks:
            return topic
        head, colon, rest = topic.partition(":")
        if colon and rest and head + ":" in self._checks:
            return head + ":"
        return None

    def validate(self, topic: Any) -> str:
        if not isinstance(topic, str) or not topic:
            raise EventError("topic must be a non-empty string")
        if len(topic) > self.max_chars or not TOPIC_NAME.fullmatch(topic):
            raise EventError(f"topic must be at most {self.max_chars} letters, digits "
                             "and '_.:@-'")
        return topic

    def is_shared(self, topic: str) -> bool:
        """Shared topics may be written by any instance; their seqs come from the database."""
        return self._family(topic) in self._shared

    async def authorize(self, topic: str, user: User) -> None:
        """Raise UnknownTopic unless the topic exists and `user` may read it."""
        self.validate(topic)
        family = self._family(topic)
        if family is None or not await self._checks[family](topic, user):
            raise UnknownTopic(f"unknown topic {topic!r}")


class TopicLog:
    """One topic's recent events: a bounded window in seq order, shared by every reader."""

    __slots__ = ("events", "frames", "head", "last_used", "name", "owned", "shared", "start",
                 "subscribers", "unflushed", "visible", "waiters", "writer")

    def __init__(self, name: str, head: int, *, shared: bool) -> None:
        self.name = name
        self.shared = shared
        self.events: list[dict] = []
        self.start = head          # memory holds every event with start < seq <= head
        self.head = head
        self.visible = head        # live frames go up to here: the head at the last tick
        self.unflushed = 0         # newest events of an owned topic not yet in the database
        self.owned = False         # this instance has published on it since it was loaded
        self.writer: asyncio.Task | None = None   # shared topics: the task writing batches
        self.subscribers: set = set()
        self.waiters: set[asyncio.Future] = set()
        self.frames: dict[tuple[int, Any], tuple[bytes, int]] = {}
        self.last_used = time.monotonic()

    def append(self, event: dict) -> None:
        self.events.append(event)
        self.head = event["seq"]

    def tick(self) -> None:
        """Make the events so far visible to live frames (the fan-out tick)."""
        if self.visible != self.head:
            self.visible = self.head
            self.frames.clear()

    def ingest(self, events: list[dict]) -> bool:
        """Add events written elsewhere (database order); False when all were known.

        A gap before them (an instance wrote in between and its chunk is not here yet)
        moves the window's start past it: those events are read from the database.
        """
        fresh = [event for event in events if event["seq"] > self.head]
        if not fresh:
            return False
        if fresh[0]["seq"] != self.head + 1 and not self.unflushed:
            self.events.clear()
            self.frames.clear()
            self.start = fresh[0]["seq"] - 1
        self.events.extend(fresh)
        self.head = fresh[-1]["seq"]
        return True

    def reset(self, head: int) -> None:
        """Forget the window: everything up to `head` is read from the database."""
        self.events.clear()
        self.frames.clear()
        self.start = self.head = self.visible = head

    def after(self, after: int, limit: int) -> list[dict]:
        """Events with seq > after, up to `limit`; the caller checks after >= start."""
        index = bisect.bisect_right(self.events, after, key=lambda event: event["seq"])
        return self.events[index:index + limit]

    def frame(self, after: int, limit: int,
              wrap: Callable[[bytes], bytes] | None = None) -> tuple[bytes, int] | None:
        """The frame of the visible events after `after` (as the transport's `wrap` puts
        it on the wire), built once per tick for every subscriber at that cursor (in step,
        they all are): (bytes, last seq), or None when there is nothing new."""
        if after >= self.visible:
            return None
        cached = self.frames.get((after, wrap))
        if cached is not None:
            return cached
        events = [e for e in self.after(after, limit) if e["seq"] <= self.visible]
        if not events:
            return None
        if len(self.frames) >= FRAME_CACHE_ENTRIES:
            self.frames.clear()
        payload = encode_frame(self.name, events)
        cached = self.frames[after, wrap] = (wrap(payload) if wrap else payload,
                                             events[-1]["seq"])
        return cached

    def trim(self, keep: int) -> None:
        """Drop the oldest stored events beyond `keep` (in steps, to keep appends cheap)."""
        excess = len(self.events) - keep
        if excess < max(1, keep // 8):
            return
        droppable = min(excess, len(self.events) - self.unflushed)
        if droppable > 0:
            self.start = self.events[droppable - 1]["seq"]
            del self.events[:droppable]

    def idle(self) -> bool:
        return not (self.subscribers or self.waiters or self.unflushed or self.writer)
