"""Live delivery to one connection: a cursor per topic, one frame in flight.

A subscriber holds no queue of its own. Each subscription is a cursor into the
topic's shared in-memory window (or, for an old cursor, the database), so a
connection costs the same memory whether it keeps up or not; the only events it
pins are those of the one frame being written. The bus's fan-out tick calls
`notify` for topics that changed; if the connection has no frame in flight, one
frame holding everything visible after the cursor is written at once (events are
coalesced per tick, and the frame is encoded once for every subscriber at the same
cursor). The next frame waits for the transport to finish the previous one (the
Future of Tornado's write_message), so a slow socket slows only itself, and no task
switch is spent on a subscriber that keeps up.

Policy for a client that cannot keep up: once a subscription has caught up
(it is live), if the topic's head gets more than `client_buffer_max_events`
ahead of its cursor, the subscription is cut off: dropped from live delivery,
with a notice `{"topic", "error", "reason": "cut_off", "after": cursor}` sent
when the socket drains (after the frame in flight, so `after` is the last seq it got).
The client resubscribes with that `after` and catches up by cursor like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from services.events.topics import TooManyTopics, TopicLog, encode, encode_frame

if TYPE_CHECKING:
    from services.settings import Settings
    from services.team.auth import User

log = logging.getLogger("ferry.events")
# write(data) queues bytes on the transport and returns an awaitable that completes
# when the transport took them, or None when it took them all at once; it raises (or its
# result raises) ConnectionError once the peer is gone. wrap(payload) turns a JSON
# message into those bytes (e.g. a WebSocket frame); shared frames are wrapped once for
# all the subscribers that use the same wrap.
Write = Callable[[bytes], Awaitable[None] | None]
Wrap = Callable[[bytes], bytes]


class Source(Protocol):
    """What a subscriber needs of the bus that made it (the EventBus is one): this module
    is imported by the bus, never the other way round."""

    settings: Settings

    async def authorize(self, topic: str, user: User) -> None: ...

    async def topic_log(self, topic: str) -> TopicLog: ...

    async def read(self, topic: str, after: int, limit: int | None = None) -> list[dict]: ...

    def forget_subscriber(self, subscriber: Subscriber) -> None: ...


class Subscription:
    __slots__ = ("acked", "cursor", "live", "log")

    def __init__(self, topic_log: TopicLog, after: int) -> None:
        self.log = topic_log
        self.cursor = after   # the last seq written to the connection
        self.live = False     # has caught up with the head at least once
        self.acked = False    # the first frame (possibly empty) was written


class Subscriber:
    """The live subscriptions of one connection; lives exactly as long as it."""

    def __init__(self, bus: Source, write: Write, close_connection: Callable[[], None],
                 wrap: Wrap | None = None) -> None:
        self.bus = bus
        self._write = write
        self._wrap = wrap
        self._close_connection = close_connection
        self._subs: dict[str, Subscription] = {}
        self._notices: deque[bytes | Subscription] = deque()
        self._in_flight: asyncio.Future | None = None
        self._catching_up: asyncio.Task | None = None
        self._turn = 0
        self.closed = False

    @property
    def topics(self) -> list[str]:
        return list(self._subs)

    async def subscribe(self, topic: str, after: int, user: User) -> None:
        """Authorise `user` for `topic`, then deliver everything after `after`, then live."""
        if topic not in self._subs and len(self._subs) >= self.bus.settings.ws_max_topics:
            raise TooManyTopics(f"at most {self.bus.settings.ws_max_topics} topics per "
                                "connection")
        await self.bus.authorize(topic, user)
        topic_log = await self.bus.topic_log(topic)
        if self.closed:
            return
        self.unsubscribe(topic)
        self._subs[topic] = Subscription(topic_log, after)
        topic_log.subscribers.add(self)
        topic_log.tick()          # the replay includes everything published until now
        self._pump()

    def unsubscribe(self, topic: str) -> bool:
        sub = self._subs.pop(topic, None)
        if sub is None:
            return False
        sub.log.subscribers.discard(self)
        return True

    def notify(self, topic_log: TopicLog) -> None:
        """Called by the fan-out tick when `topic_log` got new events."""
        sub = self._subs.get(topic_log.name)
        if sub is None:
            return
        if sub.live and topic_log.head - sub.cursor > self.bus.settings.client_buffer_max_events:
            self.unsubscribe(topic_log.name)
            self.bus.counters["cut_offs"] += 1
            self._notice(sub)
        self._pump()

    def _notice(self, notice: bytes | Subscription) -> None:
        if len(self._notices) >= 2 * self.bus.settings.ws_max_topics:
            log.info("closing a connection that does not read its notices")
            self.close_connection()
            return
        self._notices.append(notice)

    def _cut_off_notice(self, sub: Subscription) -> bytes:
        # Built when sent: the frame in flight at the cut-off is written before it.
        limit = self.bus.settings.client_buffer_max_events
        return encode({"topic": sub.log.name, "reason": "cut_off", "after": sub.cursor,
                       "error": f"this connection fell more than {limit} events behind; "
                                f"subscribe again with after={sub.cursor}"})

    def close_connection(self) -> None:
        """Ask the transport to close (shutdown, or a client that stopped reading)."""
        if not self.closed:
            self._close_connection()
        self.close()

    def close(self) -> None:
        """Stop delivery; called when the connection is gone."""
        if self.closed:
            return
        self.closed = True
        for topic in list(self._subs):
            self.unsubscribe(topic)
        self._notices.clear()
        if self._catching_up is not None:
            self._catching_up.cancel()
        self.bus.forget_subscriber(self)

    # -- writing ----------------------------------------------------------------------

    def _pump(self) -> None:
        """Write frames until one is in flight or nothing is left (see _pump_one)."""
        while self._pump_one():
            pass

    def _pump_one(self) -> bool:
        """Write the next frame, unless one is in flight: notices first, then one frame
        per topic in turn, from memory; an old cursor starts a database read. True when
        the transport took the whole frame at once, so the next one may follow now."""
        if self.closed or self._in_flight is not None or self._catching_up is not None:
            return False
        if self._notices:
            notice = self._notices.popleft()
            return self._send(self._cut_off_notice(notice) if isinstance(notice, Subscription)
                              else notice)
        subs, first = list(self._subs.values()), self._turn
        for index in range(len(subs)):
            sub = subs[(first + index) % len(subs)]
            if sub.cursor < sub.log.start:
                self._catching_up = asyncio.get_running_loop().create_task(
                    self._catch_up(sub))
                return False
            cached = sub.log.frame(sub.cursor, self.bus.settings.event_page_max, self._wrap)
            if cached is None:
                sub.live = True
                if sub.acked:
                    continue
            self._turn = (first + index + 1) % len(subs)
            sub.acked = True
            if cached is None:
                return self._send(encode_frame(sub.log.name, []))
            data, sub.cursor = cached
            return self._start(data)
        return False

    def _send(self, payload: bytes) -> bool:
        return self._start(self._wrap(payload) if self._wrap else payload)

    def _start(self, data: bytes) -> bool:
        """Hand `data` to the transport; True when it took every byte at once (the write
        returned None: no Future, no callback, for the common case of a socket that keeps
        up), else the frame is in flight until its Future completes."""
        try:
            pending = self._write(data)
            if pending is None:
                return True
            future = asyncio.ensure_future(pending)
        except ConnectionError:
            self.close()
            return False
        self._in_flight = future
        future.add_done_callback(self._written)
        return False

    def _written(self, future: asyncio.Future) -> None:
        self._in_flight = None
        if future.cancelled() or future.exception() is not None:
            self.close()
        else:
            self._pump()

    async def _catch_up(self, sub: Subscription) -> None:
        """One frame from the database for a cursor older than the memory window."""
        try:
            events = await self.bus.read(sub.log.name, sub.cursor,
                                         self.bus.settings.event_page_max)
        except Exception:
            log.exception("could not read %s for a subscriber", sub.log.name)
            self._catching_up = None
            self.close_connection()
            return
        self._catching_up = None
        if self.closed or self._subs.get(sub.log.name) is not sub:
            return self._pump()
        if events:
            sub.cursor, sub.acked = events[-1]["seq"], True
            if self._send(encode_frame(sub.log.name, events)):
                self._pump()
        else:   # nothing is stored between the cursor and the window: skip to it
            sub.cursor = max(sub.cursor, sub.log.start)
            self._pump()
