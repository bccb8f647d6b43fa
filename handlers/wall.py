"""The big-screen wall: its page, its snapshot, its event stream and its links.

A wall link's token is accepted here and nowhere else (see services/wall/links.py):
the page (`/wall?key=…` once, then a cookie scoped to these handlers), `GET /api/wall`,
and the `wall` topic through `/wall/ws` and `/api/wall/events`, which serve that topic
only. Every other handler resolves users from sessions and API tokens, so the same
token there is just an unknown credential. A signed-in user opens all of it too.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import tornado.escape
import tornado.ioloop
import tornado.locale
import tornado.websocket

from handlers.access import UserError, public, requires
from handlers.base import ApiHandler, BaseHandler
from handlers.events import EventsHandler
from handlers.locale import translations
from handlers.ws import MAX_SEQ, EventSocketHandler
from services.errors import FerryError
from services.team.audit import Actor
from services.team.auth import User
from services.wall.links import LinkRevoked

WALL_COOKIE = "ferry_wall"
WALL_COOKIE_DAYS = 400
LINK_USER = User("wall-link", "viewer")   # what the bus sees for a wall link (wall topic only)
GROUP = re.compile(r"[^\x00-\x1f\x7f]{1,100}")
REVOKED = "this wall link was revoked"

def inline_json(data: bytes) -> str:
    """JSON to place inside a page's <script type="application/json">: every <, > and &
    (only ever inside JSON strings) written as \\u escapes, so no text in it can end the
    element or start markup; JSON.parse reads back the same strings."""
    return (data.decode().replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("&", "\\u0026"))


class WallAccess:
    """Who is looking at the wall: a signed-in user, or a wall link (`wall_link`)."""

    wall_link: dict | None = None
    # The wall shows every project's hosts and releases: a signed-in user needs a global
    # role that sees every project (viewer or above). A wall link, made by an admin,
    # shows it all. (The vote screen, one release's, sets this False.)
    whole_fleet = True

    def _wall_token(self) -> str | None:
        header = self.request.headers.get("Authorization", "")
        if header.startswith("Bearer fw_"):
            return header.split(" ", 1)[1].strip()
        cookie = self.get_signed_cookie(WALL_COOKIE, max_age_days=WALL_COOKIE_DAYS)
        return cookie.decode() if cookie else None

    async def wall_viewer(self, revoked_status: int = 410, *, opened: bool = False) -> User:
        """The user, or LINK_USER for a valid wall link; 401, or `revoked_status` when
        the link was revoked. `opened`: a link's page was opened (counted in its uses)."""
        if self.current_user is not None:
            if self.whole_fleet and not self.current_user.can("viewer"):
                raise UserError(403, "the wall shows every project: it needs the viewer "
                                "role, or a wall link")
            return self.current_user
        token = self._wall_token()
        try:
            link = await self.services.wall.links.resolve(token) if token else None
        except LinkRevoked:
            raise UserError(revoked_status, REVOKED) from None
        if link is None:
            raise UserError(401, "sign in, or open the wall through a wall link")
        self.wall_link = link
        # Its use, in the link and in the audit log at once: one wait for the database.
        await asyncio.gather(
            self.services.wall.links.touch(link, opened=opened),
            self.services.audit.record_every(
                f"wall_link.use:{link['_id']}",
                self.services.settings.audit_wall_link_use_every_s,
                Actor(f"wall-link:{link['_id']}", self.client_address(), "wall-link"),
                "wall_link.use", str(link["_id"]), details={"name": link.get("name")}))
        return LINK_USER


class WallPage(WallAccess, BaseHandler):
    """GET /wall[?by=group|project&only=problems&group=G&page=auto&every=S][&key=TOKEN]"""

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Referrer-Policy", "no-referrer")   # the URL may hold the token

    @public
    async def get(self) -> None:
        options = self._options()
        key = self.get_query_argument("key", None)
        if key is not None:
            await self._swap_key(key)
            return
        if self.current_user is None and self._wall_token() is None:
            return self.deny_anonymous()
        await self.wall_viewer(opened=self.request.method == "GET")
        strings = tornado.escape.json_encode(translations(self.locale))
        # The snapshot comes with the page (one round trip less for the first render).
        snapshot = await self.services.wall.snapshot_json()
        self.render("wall.html", i18n=strings, viewer="link" if self.wall_link else "user",
                    snapshot=inline_json(snapshot), **options)

    async def _swap_key(self, key: str) -> None:
        """The token travels in the URL once: it becomes a cookie, and the URL loses it."""
        try:
            link = await self.services.wall.links.resolve(key)
        except LinkRevoked:
            raise UserError(410, REVOKED) from None
        if link is None:
            raise UserError(403, "this wall link is not valid")
        await self.services.wall.links.touch(link)
        self.set_signed_cookie(WALL_COOKIE, key, expires_days=WALL_COOKIE_DAYS, httponly=True,
                               samesite="Lax")
        query = "&".join(f"{name}={tornado.escape.url_escape(value)}"
                         for name, value in self._given_options())
        self.redirect("/wall" + (f"?{query}" if query else ""))

    def _given_options(self) -> list[tuple[str, str]]:
        """The modes the URL gave (checked by _options first), to keep after the swap."""
        return [(name, self.get_query_argument(name, strip=False))
                for name in ("by", "only", "group", "page", "every")
                if self.get_query_argument(name, None) is not None]

    def _options(self) -> dict[str, Any]:
        """The URL's modes, checked: anything else is a 400, never passed on."""
        if len(self.request.query) > self.services.settings.max_query_argument_bytes:
            raise UserError(400, "query string too long")
        by = self.get_query_argument("by", "group", strip=False)
        only = self.get_query_argument("only", "", strip=False)
        paging = self.get_query_argument("page", "", strip=False)
        group = self.get_query_argument("group", "", strip=False)
        every = self.get_query_argument("every", "10", strip=False)
        if by not in ("group", "project"):
            raise UserError(400, "by must be group or project")
        if only not in ("", "problems"):
            raise UserError(400, "only must be problems")
        if paging not in ("", "auto"):
            raise UserError(400, "page must be auto")
        if group and not GROUP.fullmatch(group):
            raise UserError(400, "group must be 1 to 100 characters, no control characters")
        if not every.isascii() or not every.isdigit() or not 3 <= int(every) <= 300:
            raise UserError(400, "every must be a whole number of seconds from 3 to 300")
        return {"by": by, "only": only, "group": group, "paging": paging,
                "every": int(every)}


class WallApiHandler(WallAccess, ApiHandler):
    """GET /api/wall: {hosts, releases, votes, seq}; then follow `wall` after seq."""

    @public
    async def get(self) -> None:
        await self.wall_viewer()
        self.finish(await self.services.wall.snapshot_json())   # already JSON


class WallEventsHandler(WallAccess, EventsHandler):
    """GET /api/wall/events?topic=wall&after=SEQ&wait=W: /api/events for the wall topic
    only. A wall link's wait is cut to wall_link_recheck_s, so revocation is seen soon."""

    @public
    async def get(self) -> None:
        user = await self.wall_viewer(revoked_status=401)
        topic, after, wait, limit = self._arguments()
        if topic != "wall":
            raise UserError(404, f"unknown topic {topic!r}")
        if self.wall_link is not None:
            wait = min(wait, self.services.settings.wall_link_recheck_s)
        events_bus = self.services.events
        await events_bus.authorize(topic, user)
        self._waiting = asyncio.ensure_future(events_bus.wait(topic, after, wait, limit))
        try:
            events = await self._waiting
        except asyncio.CancelledError:
            if self.request.connection.stream.closed():
                return                    # the client left; nobody to answer
            raise
        self.write_json({"topic": topic, "events": events,
                         "next": events[-1]["seq"] if events else after})


class LinkSocketRecheck:
    """For a socket opened through a wall link (the wall's, a vote screen's): the link is
    checked again every wall_link_recheck_s, and the socket closed (4401) once revoked."""

    _recheck: tornado.ioloop.PeriodicCallback | None = None

    def start_link_recheck(self) -> None:
        if self.wall_link is not None:
            self._recheck = tornado.ioloop.PeriodicCallback(
                self._check_link, self.services.settings.wall_link_recheck_s * 1000)
            self._recheck.start()

    def stop_link_recheck(self) -> None:
        if self._recheck is not None:
            self._recheck.stop()

    async def _check_link(self) -> None:
        try:
            self._user = await self._resolve_user()
            await self.wall_viewer(revoked_status=401)
        except UserError:
            await self._error("unauthenticated", REVOKED)
            self.close(4401, "wall link revoked")


class WallSocketHandler(LinkSocketRecheck, WallAccess, EventSocketHandler):
    """/wall/ws: /ws for the wall topic only; a wall link's socket is closed (4401)
    within wall_link_recheck_s of its revocation."""

    @public
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await self.wall_viewer(revoked_status=401)
        await tornado.websocket.WebSocketHandler.get(self, *args, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        super().open(*args, **kwargs)
        self.start_link_recheck()

    def on_close(self) -> None:
        self.stop_link_recheck()
        super().on_close()

    async def _subscribe(self, request: dict) -> None:
        topic, after = request.get("topic"), request.get("after", 0)
        if topic != "wall":
            await self._error("unknown_topic", "this socket serves the wall topic only",
                              topic=str(topic)[:200])
            return
        try:
            self._user = await self._resolve_user()        # checked again on every subscribe
            user = await self.wall_viewer(revoked_status=401)
        except UserError:
            await self._error("unauthenticated", "sign in, or open a valid wall link")
            self.close(4401, "authentication required")
            return
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_SEQ:
            await self._error("bad_request", "after must be an integer >= 0", topic=topic)
            return
        try:
            if self.subscriber is not None:
                await self.subscriber.subscribe(topic, after, user)
        except FerryError as error:
            await self._error(getattr(error, "reason", "bad_request"), str(error), topic=topic)


class WallLinksHandler(ApiHandler):
    """GET /api/wall/links (list), POST (create: {"name", "show_chat"?}): admins only."""

    @requires("admin")
    async def get(self) -> None:
        self.write_json({"links": await self.services.wall.links.list()})

    @requires("admin")
    async def post(self) -> None:
        link = await self.services.wall.links.create(self.current_user.name,
                                                      self.get_json_body())
        await self.audit("wall_link.create", link["id"], details={
            "name": link["name"], "show_chat": link["show_chat"]})
        self.set_header("Location", f"/api/wall/links/{link['id']}")
        self.write_json(link, 201)


class WallLinkHandler(ApiHandler):
    """DELETE /api/wall/links/<id>: revoke (the screen says so within seconds)."""

    @requires("admin")
    async def delete(self, link_id: str) -> None:
        if len(link_id) > 12:
            raise UserError(404, "no such wall link")
        link = await self.services.wall.links.revoke(int(link_id))
        await self.audit("wall_link.revoke", link["id"], details={"name": link["name"]})
        self.write_json(link)
