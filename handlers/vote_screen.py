"""The big-screen vote page of a release: its page, its snapshot and its event stream.

Opened by a signed-in user, or through a wall link (a TV): the same cookie the wall
sets (`/wall?key=…`, or `/releases/<id>/vote?key=…` here) opens these handlers and no
others. A screen is sent only what it shows (services/chat/screen.py): the release's
events without logs, and the room's chat text only when it may show it (a signed-in
user, or a link made with `show_chat`). Its stream has its own endpoints, which serve
the release's topic and its room's, cut down, and nothing else:
`/releases/<id>/vote/ws` (WebSocket, the /ws protocol) and
`/api/releases/<id>/vote/events` (long-polling, the /api/events protocol).
"""

from __future__ import annotations

import asyncio
import contextlib

import tornado.escape
import tornado.ioloop
import tornado.iostream
import tornado.websocket

from handlers.access import UserError, public
from handlers.base import ApiHandler, BadJson, BaseHandler, dumps, parse_json
from handlers.events import EventsHandler
from handlers.locale import translations
from handlers.wall import REVOKED, WALL_COOKIE, WALL_COOKIE_DAYS, LinkSocketRecheck, WallAccess
from handlers.ws import MAX_SEQ, EventSocketHandler
from services.chat.screen import screen_events, screen_topics
from services.events.topics import Overloaded
from services.releases.service import parse_release_id
from services.wall.links import LinkRevoked

WAIT_S = 25.0
OVERLOADED_PAUSE_S = 2.0


class ScreenAccess(WallAccess):
    """A vote screen's viewer: a user, or a wall link; `chat` says if chat text is shown."""

    whole_fleet = False       # one release: whoever sees its project (see screen_viewer)

    async def screen_viewer(self, release_id: str, revoked_status: int = 410) -> tuple[int, bool]:
        """(release id, whether chat text may be sent); 401/410 as the wall, 404 for a
        release that does not exist."""
        viewer = await self.wall_viewer(revoked_status)
        number = parse_release_id(release_id)
        if self.wall_link is None:        # a user sees the releases of their projects
            await self.services.access.require_release(viewer, number, "view")
        else:                             # a wall link (made by an admin) sees them all
            await self.services.releases.find(number)
        return number, self.wall_link is None or bool(self.wall_link.get("show_chat"))


class VoteScreenPage(ScreenAccess, BaseHandler):
    """GET /releases/<id>/vote[?key=TOKEN]: the page for a TV."""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")   # the URL may hold the token

    @public
    async def get(self, release_id: str) -> None:
        key = self.get_query_argument("key", None)
        if key is not None:
            return await self._swap_key(key, release_id)
        if self.current_user is None and self._wall_token() is None:
            return self.deny_anonymous()
        number, chat = await self.screen_viewer(release_id)
        if self.wall_link is not None:
            await self.services.wall.links.touch(self.wall_link, opened=True)
        self.render("vote.html", release_id=number, show_chat=chat,
                    viewer="link" if self.wall_link else "user",
                    i18n=tornado.escape.json_encode(translations(self.locale)))

    async def _swap_key(self, key: str, release_id: str) -> None:
        """The token travels in the URL once: it becomes the wall's cookie."""
        number = parse_release_id(release_id)
        try:
            link = await self.services.wall.links.resolve(key)
        except LinkRevoked:
            raise UserError(410, REVOKED) from None
        if link is None:
            raise UserError(403, "this wall link is not valid")
        self.set_signed_cookie(WALL_COOKIE, key, expires_days=WALL_COOKIE_DAYS, httponly=True,
                               samesite="Lax")
        self.redirect(f"/releases/{number}/vote")


class VoteScreenApiHandler(ScreenAccess, ApiHandler):
    """GET /api/releases/<id>/vote/screen: the screen's snapshot (services/chat/screen.py)."""

    @public
    async def get(self, release_id: str) -> None:
        number, chat = await self.screen_viewer(release_id)
        self.write_json(await self.services.chat.screen.snapshot(number, chat=chat))


class VoteScreenEventsHandler(ScreenAccess, EventsHandler):
    """GET /api/releases/<id>/vote/events?topic=T&after=SEQ&wait=W: long-polling of the
    screen's topics, cut down. Answers when there is something the screen is sent (or
    after W); `next` moves past what it is not sent."""

    @public
    async def get(self, release_id: str) -> None:
        number, chat = await self.screen_viewer(release_id, revoked_status=401)
        topic, after, wait, limit = self._arguments()
        if topic not in screen_topics(number, chat):
            raise UserError(404, f"unknown topic {topic!r}")
        if self.wall_link is not None:
            wait = min(wait, self.services.settings.wall_link_recheck_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            self._waiting = asyncio.ensure_future(self.services.events.wait(
                topic, after, max(0.0, deadline - loop.time()), limit))
            try:
                raw = await self._waiting
            except asyncio.CancelledError:
                if self.request.connection.stream.closed():
                    return
                raise
            events = screen_events(topic, raw, chat)
            after = raw[-1]["seq"] if raw else after
            if events or not raw or loop.time() >= deadline:
                break
        self.write_json({"topic": topic, "events": events, "next": after})


class VoteScreenSocketHandler(LinkSocketRecheck, ScreenAccess, EventSocketHandler):
    """/releases/<id>/vote/ws: the /ws protocol for the screen's topics, cut down; one
    follower per topic. A wall link's socket closes (4401) soon after its revocation."""

    @public
    async def get(self, release_id: str) -> None:
        self.release_id, self.chat = await self.screen_viewer(release_id, revoked_status=401)
        await tornado.websocket.WebSocketHandler.get(self, release_id)

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        self._followers: dict[str, asyncio.Task] = {}
        self.start_link_recheck()

    def on_close(self) -> None:
        self.stop_link_recheck()
        for task in getattr(self, "_followers", {}).values():
            task.cancel()

    async def on_message(self, message: str | bytes) -> None:
        try:
            if isinstance(message, bytes):
                raise BadJson("binary frame")
            request = parse_json(message, self.services.settings.json_max_depth)
        except BadJson:
            await self._error("bad_json", "send JSON text frames")
            return
        if not isinstance(request, dict) or request.get("op") not in ("subscribe",
                                                                       "unsubscribe"):
            await self._error("unknown_op", "use subscribe or unsubscribe")
            return
        topic, after = request.get("topic"), request.get("after", 0)
        if topic not in screen_topics(self.release_id, self.chat):
            await self._error("unknown_topic", "this socket serves one vote screen's topics",
                              topic=str(topic)[:200])
            return
        old = self._followers.pop(topic, None)
        if old is not None:
            old.cancel()
        if request["op"] == "unsubscribe":
            return
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_SEQ:
            await self._error("bad_request", "after must be an integer >= 0", topic=topic)
            return
        self._followers[topic] = asyncio.get_running_loop().create_task(
            self._follow(topic, after), name=f"vote screen {topic}")

    async def _follow(self, topic: str, after: int) -> None:
        """Send the topic's events after `after`, cut down, as they come; the socket's
        write is the back-pressure."""
        events_bus = self.services.events
        loop = asyncio.get_running_loop()
        await self._send(topic, [])                 # the subscription is live
        while True:
            started = loop.time()
            try:
                raw = await events_bus.wait(topic, after, WAIT_S)
            except Overloaded:
                await asyncio.sleep(OVERLOADED_PAUSE_S)
                continue
            if not raw:
                if loop.time() - started < WAIT_S / 2:     # the bus is closing its clients
                    self.close(1001, "server shutting down")
                    return
                continue
            after = raw[-1]["seq"]
            events = screen_events(topic, raw, self.chat)
            if events and not await self._send(topic, events):
                return

    async def _send(self, topic: str, events: list[dict]) -> bool:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError,
                                 tornado.iostream.StreamClosedError):
            await self.write_message(dumps({"topic": topic, "events": events}))
            return True
        return False
