"""Messages: cleaned, capped, rate-limited, published as events on `chat:<room>`.

A message is the event's data plus its seq and time:
`{"id": seq, "room", "user", "text", "ts", "kind": "message" | "system"}`. The bus
stores it (chunked, durable within about a second), numbers it (the room's seq is its
id) and delivers it over WebSocket, long-polling and polling alike; history is read
from the same events, backwards by id.

Text is data, never markup or a command line: control characters (and the Unicode
direction overrides that can disguise text) are removed, the length is capped, and the
pages insert it as text. Nothing here passes it to a shell.
"""

from __future__ import annotations

import math
import re
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from services.chat.rooms import Room, Rooms
from services.errors import FerryError, Invalid
from services.settings import Settings
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus

# C0/C1 controls except tab and newline, DEL, bidi embeddings/overrides/isolates,
# zero-width look-alikes' cousins that reorder text, and lone surrogates.
_STRIP = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069"
                    r"\ufeff\ud800-\udfff]")
_BREAKS = re.compile(r"\r\n?|[\u2028\u2029\x85]")
SYSTEM_USER = "ferry"


class RateLimited(FerryError):
    """Too many messages: `wait_s` says when the next one will be accepted."""

    status = 429

    def __init__(self, wait_s: float) -> None:
        self.wait_s = wait_s
        self.retry_after = max(1, math.ceil(wait_s))    # Retry-After header and JSON field
        super().__init__(f"too many messages: wait {wait_s:.1f} s before sending another")


def clean_text(text: Any, max_chars: int, what: str = "text") -> str:
    """`text` as a user may post it: a string of at most `max_chars` characters, line
    breaks as "\\n", no control characters; Invalid (400) otherwise or when empty."""
    if not isinstance(text, str):
        raise Invalid(f"{what} must be a string")
    if len(text) > max_chars:
        raise Invalid(f"{what} is longer than {max_chars} characters ({len(text)})")
    cleaned = _STRIP.sub("", _BREAKS.sub("\n", text)).strip()
    if not cleaned:
        raise Invalid(f"{what} is empty")
    return cleaned


class RateLimiter:
    """A token bucket per user: `burst` at once, then `per_s` a second. Bounded: the
    least recently used buckets are forgotten first (a forgotten bucket is a full one)."""

    def __init__(self, burst: int, per_s: float, max_users: int) -> None:
        self.burst = burst
        self.per_s = per_s
        self.max_users = max_users
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, user: str) -> None:
        """Spend one token of `user`'s, or raise RateLimited with the wait."""
        now = time.monotonic()
        tokens, then = self._buckets.pop(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.per_s)
        if tokens < 1:
            self._buckets[user] = (tokens, now)
            raise RateLimited((1 - tokens) / self.per_s)
        self._buckets[user] = (tokens - 1, now)
        while len(self._buckets) > self.max_users:
            self._buckets.popitem(last=False)


def message_of(event: dict) -> dict:
    """The API's shape of a chat event."""
    data = event["data"]
    return {"id": event["seq"], "room": data.get("room"), "user": data.get("user"),
            "text": data.get("text"), "ts": event["ts"], "kind": data.get("kind", "message")}


class Messages:
    """Posting and reading messages; rooms are resolved (and authorised) by the caller."""

    def __init__(self, settings: Settings, events: EventBus, rooms: Rooms) -> None:
        self.settings = settings
        self.events = events
        self.rooms = rooms
        self.limiter = RateLimiter(settings.chat_rate_burst, settings.chat_rate_per_s,
                                   settings.chat_rate_max_users)

    def clean(self, text: Any) -> str:
        return clean_text(text, self.settings.chat_message_max_chars)

    def spend(self, user: User) -> None:
        """Count one message against `user`'s rate (before any work is done for it)."""
        self.limiter.take(user.name)

    async def post(self, user: User, room: Room, text: str) -> dict:
        """Publish a user's already cleaned and counted message; returns it."""
        return message_of(await self.events.publish(room.topic, "message", {
            "room": room.name, "user": user.name, "text": text, "kind": "message"}))

    async def system(self, room: Room, text: str) -> dict:
        """Ferry speaking in a room (milestones, votes, command replies)."""
        text = _STRIP.sub("", text)[:self.settings.chat_message_max_chars]
        return message_of(await self.events.publish(room.topic, "message", {
            "room": room.name, "user": SYSTEM_USER, "text": text, "kind": "system"}))

    async def history(self, room: Room, before: int | None, limit: int) -> dict:
        """The `limit` messages before id `before` (default: the newest), oldest first."""
        limit = max(1, min(limit, self.settings.chat_history_page_max))
        head = await self.events.head(room.topic)
        end = head + 1 if before is None else max(1, min(before, head + 1))
        start = max(0, end - 1 - limit)
        events = await self.events.read(room.topic, start, end - 1 - start) if end > 1 else []
        messages = [message_of(e) for e in events if e["seq"] < end and e["type"] == "message"]
        return {"room": room.name, "messages": messages, "head": head,
                "before": messages[0]["id"] if messages and messages[0]["id"] > 1 else None}
