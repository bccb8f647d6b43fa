"""GET /api/events?topic=T&after=SEQ&wait=W[&limit=N]: long-polling and plain polling.

Answers `{"topic", "events", "next"}` as soon as there are events after SEQ, or with
no events after W seconds (W = 0: at once, plain polling). `next` is the cursor to
send next time. The same events and JSON as /ws. No side effects; a client that
goes away cancels its wait.
"""

from __future__ import annotations

import asyncio

from handlers.access import UserError, requires
from handlers.base import ApiHandler

MAX_SEQ = 2**53


class EventsHandler(ApiHandler):
    _waiting: asyncio.Future | None = None

    @requires("member")
    async def get(self) -> None:
        topic, after, wait, limit = self._arguments()
        events_bus = self.services.events
        await events_bus.authorize(topic, self.current_user)
        self._waiting = asyncio.ensure_future(events_bus.wait(topic, after, wait, limit))
        try:
            events = await self._waiting
        except asyncio.CancelledError:
            if self.request.connection.stream.closed():
                return                    # the client left; nobody to answer
            raise
        self.write_json({"topic": topic, "events": events,
                         "next": events[-1]["seq"] if events else after})

    def on_connection_close(self) -> None:
        if self._waiting is not None:
            self._waiting.cancel()

    def _arguments(self) -> tuple[str, int, float, int | None]:
        settings = self.services.settings
        if len(self.request.query) > settings.max_query_argument_bytes:
            raise UserError(400, "query string too long")
        # strip=False: "wall\n" is a malformed topic, not "wall" (validate refuses it)
        topic = self.get_query_argument("topic", "", strip=False)
        if not topic:
            raise UserError(400, "topic is required")
        self.services.events.topics.validate(topic)
        after = self.query_number("after", "0", int, 0, MAX_SEQ - 1)
        wait = self.query_number("wait", "0", float, 0, settings.longpoll_max_wait_s)
        limit = self.get_query_argument("limit", None)
        page = settings.event_page_max
        return topic, after, wait, None if limit is None else self.query_number(
            "limit", limit, int, 1, page)
