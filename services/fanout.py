"""Live delivery to one connection: a cursor per topic and one sender task.

A subscriber holds no queue of its own. Each subscription is a cursor into the
topic's shared in-memory window (or, for an old cursor, the database), so a
connection costs the same memory whether it keeps up or not; the only events
it pins are those of the one frame being written. The bus's fan-out tick wakes
subscribers of topics that changed; the sender then writes one frame per topic
holding everything after the cursor (events coalesced per tick), awaiting each
write (`send` returns when the transport took the bytes), so a slow socket
slows only its own sender.

Policy for a client that cannot keep up: once a subscription has caught up
(it is live), if the topic's head gets more than `client_buffer_max_events`
ahead of its cursor, the subscription is cut off: dropped from live delivery,
with a notice `{"topic", "error", "reason": "cut_off", "after": cursor}` sent
when the socket drains (after the frame in flight, so `after` is the last seq it got). The client resubscribes with that `after` and catches up
by cursor like any other client.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from services.topics import TooManyTopics, TopicLog, encode, encode_frame

if TYPE_CHECKING:
    from services.auth import User
    from services.events import EventBus

log = logging.getLogger("ferry.events")
Send = Callable[[bytes], Awaitable[None]]   # raises ConnectionError once the peer is gone


class Subscription:
    __slots__ = ("acked", "cursor", "live", "log")

    def __init__(self, topic_log: TopicLog, after: int) -> None:
        self.log = topic_log
        self.cursor = after
        self.live = False     # has caught up with the head at least once
        self.acked = False    # the first frame (possibly empty) was sent


class Subscriber:
    """The live subscriptions of one connection; lives exactly as long as it."""

    def __init__(self, bus: EventBus, send: Send, close_connection: Callable[[], None]) -> None:
        self.bus = bus
        self._send = send
        self._close_connection = close_connection
        self._subs: dict[str, Subscription] = {}
        self._notices: deque[bytes | Subscription] = deque()
        self._wake = asyncio.Event()
        self.closed = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="ws sender")

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
        self._wake.set()

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
            self._notice(sub)
        self._wake.set()

    def _notice(self, notice: bytes | Subscription) -> None:
        if len(self._notices) >= 2 * self.bus.settings.ws_max_topics:
            log.info("closing a connection that does not read its notices")
            self.close_connection()
            return
        self._notices.append(notice)

    def _cut_off_notice(self, sub: Subscription) -> bytes:
        # Built when sent: a frame in flight at the cut-off has moved the cursor since.
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
        self._task.cancel()
        self.bus.forget_subscriber(self)

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                await self._send_notices()
                progressed = True
                while progressed:      # round-robin: one frame per topic per round
                    progressed = False
                    for sub in list(self._subs.values()):
                        progressed |= await self._send_next(sub)
                        await self._send_notices()
        except ConnectionError:
            self.close()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("event sender failed; closing the connection")
            self.close_connection()

    async def _send_notices(self) -> None:
        while self._notices:
            notice = self._notices.popleft()
            if isinstance(notice, Subscription):
                notice = self._cut_off_notice(notice)
            await self._send(notice)

    async def _send_next(self, sub: Subscription) -> bool:
        """Send one frame of what `sub` has not seen; False when it is caught up."""
        topic_log, page = sub.log, self.bus.settings.event_page_max
        if sub.cursor >= topic_log.start:
            cached = topic_log.frame(sub.cursor, page)
            frame, last = cached if cached else (None, None)
        else:
            events = await self.bus.read(topic_log.name, sub.cursor, page)
            frame = encode_frame(topic_log.name, events) if events else None
            last = events[-1]["seq"] if events else None
        if self._subs.get(topic_log.name) is not sub:
            return False
        if frame is None:
            sub.live = True
            if sub.acked:
                return False
            frame = encode_frame(topic_log.name, [])
        await self._send(frame)
        sub.acked = True
        if last is not None:
            sub.cursor = last
        return last is not None
