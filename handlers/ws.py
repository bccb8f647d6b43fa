"""/ws: one WebSocket per browser tab, any number of topics, JSON both ways.

Client → server:
    {"op": "subscribe", "topic": "release:12", "after": 0}
    {"op": "unsubscribe", "topic": "release:12"}
Server → client:
    {"topic": "release:12", "events": [{"topic", "seq", "type", "ts", "data"}, ...]}
        (the first frame after a subscribe may be empty: the subscription is live)
    {"error": "...", "reason": "bad_json" | "bad_request" | "unknown_op" | "unknown_topic"
              | "too_many_topics" | "cut_off" | "unauthenticated", "topic"?, "after"?}
A bad message gets an error frame and the socket stays open. Messages larger than
ws_max_message_bytes close the socket with 1009 (Tornado's
websocket_max_message_size); pings find dead peers (websocket_ping_interval).

Authentication happens in prepare() before the upgrade (session cookie or bearer
token); the credential is checked again on every subscribe, so a revoked session
stops subscribing, and every ws_auth_recheck_s: a disabled user's socket closes (4401)
and a topic they may no longer read is unsubscribed with an `unknown_topic` error. The
origin check is strict: the server's own origin (Tornado compares Origin with Host) plus
settings.allowed_origins, nothing else.
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import Awaitable, Callable
from typing import Any

import tornado.iostream
import tornado.websocket

from handlers.access import UserError, requires
from handlers.base import ApiHandler, BadJson, BaseHandler, dumps, parse_json
from services.errors import FerryError
from services.events.fanout import Subscriber
from services.events.topics import EventError
from services.team.auth import User

MAX_SEQ = 2**53


def text_frame(payload: bytes) -> bytes:
    """One unmasked, uncompressed RFC 6455 text frame, as a server sends it (the handler
    negotiates no compression: see get_compression_options)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 2**16:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


class EventSocketHandler(BaseHandler, tornado.websocket.WebSocketHandler):
    """Subscribers live exactly as long as their socket."""

    subscriber: Subscriber | None = None
    _unwatch: Callable[[], None] | None = None

    @requires("member")
    async def get(self, *args: Any, **kwargs: Any) -> None:
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        # Only called for cross-origin requests: same-origin ones were accepted already.
        allowed = {o.rstrip("/").lower() for o in self.services.settings.allowed_origins}
        return origin.rstrip("/").lower() in allowed

    def deny_anonymous(self) -> None:
        raise UserError(401, "authentication required")

    def get_compression_options(self) -> None:
        return None      # text_frame writes uncompressed frames: no permessage-deflate

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        ApiHandler.write_error(self, status_code, **kwargs)

    def open(self, *args: str, **kwargs: str) -> None:
        self.set_nodelay(True)
        self.subscriber = self.services.events.subscriber(self._write, self._close_for_bus,
                                                          text_frame)
        credential = self.credential()
        if self.current_user is not None and credential is not None:   # not a wall link's
            self._unwatch = self.services.socket_credentials.watch(credential,
                                                                   self._check_access)

    async def _check_access(self, user: User | None) -> None:
        """What the socket's credential resolves to now (every open socket's is checked
        together, every ws_auth_recheck_s): a user disabled (or signed out) loses the
        socket, a topic they may no longer read is unsubscribed."""
        if self.subscriber is None or self.subscriber.closed:
            return
        if user is None:
            await self._error("unauthenticated", "your session has ended; sign in again")
            self.close(4401, "authentication required")
            return
        self._user = user
        for topic in list(self.subscriber.topics):
            try:
                await self.services.events.authorize(topic, user)
            except EventError as error:
                self.subscriber.unsubscribe(topic)
                await self._error(error.reason, str(error), topic=topic)

    def on_close(self) -> None:
        if self._unwatch is not None:
            self._unwatch()
        if self.subscriber is not None:
            self.subscriber.close()

    async def on_message(self, message: str | bytes) -> None:
        # Tornado reads the next message only when this returns: per-socket flow control.
        if isinstance(message, bytes):
            await self._error("bad_request", "send JSON text frames, not binary ones")
            return
        try:
            request = parse_json(message, self.services.settings.json_max_depth)
        except BadJson as error:
            await self._error("bad_json", f"message is not valid JSON: {error}")
            return
        if not isinstance(request, dict):
            await self._error("bad_request", "message must be a JSON object")
            return
        op = request.get("op")
        if op == "subscribe":
            await self._subscribe(request)
        elif op == "unsubscribe":
            topic = request.get("topic")
            if not isinstance(topic, str) or self.subscriber is None:
                await self._error("bad_request", "unsubscribe needs a topic")
            else:
                self.subscriber.unsubscribe(topic)
        else:
            await self._error("unknown_op", f"unknown op {str(op)[:40]!r}: use subscribe or "
                              "unsubscribe")

    async def _subscribe(self, request: dict) -> None:
        topic, after = request.get("topic"), request.get("after", 0)
        if isinstance(after, bool) or not isinstance(after, int) or not 0 <= after < MAX_SEQ:
            await self._error("bad_request", "after must be an integer >= 0 (the last seq "
                              "you have, 0 for everything)", topic=str(topic)[:200])
            return
        user = await self._resolve_user()          # checked again on every subscribe
        if user is None:
            await self._error("unauthenticated", "your session has ended; sign in again")
            self.close(4401, "authentication required")
            return
        try:
            topic = self.services.events.topics.validate(topic)
            if self.subscriber is not None:
                await self.subscriber.subscribe(topic, after, user)
        except EventError as error:
            await self._error(error.reason, str(error), topic=str(topic)[:200])
        except FerryError as error:
            await self._error("bad_request", str(error), topic=str(topic)[:200])

    async def _error(self, reason: str, message: str, **fields: Any) -> None:
        with contextlib.suppress(tornado.websocket.WebSocketClosedError,
                                 tornado.iostream.StreamClosedError):
            await self.write_message(dumps({"error": message, "reason": reason, **fields}))

    def _write(self, data: bytes) -> Awaitable[None] | None:
        # Whole frames (see text_frame) straight onto the connection's stream: what
        # write_message does, minus its per-call wrapper task and copy, since this runs
        # for every subscriber on every tick. The Future completes when the socket took
        # the bytes: the subscriber's backpressure. When nothing is queued on a plain
        # (not TLS) stream, the frame is first offered to the socket itself: a socket
        # that keeps up takes it whole, and no Future or callback is made (None).
        connection = self.ws_connection
        if connection is None or connection.is_closing() or connection.stream is None:
            raise ConnectionError("websocket closed")
        stream = connection.stream
        try:
            if type(stream) is tornado.iostream.IOStream and not stream.writing():
                try:
                    sent = stream.socket.send(data)
                except BlockingIOError:
                    sent = 0
                if sent == len(data):
                    return None
                data = data[sent:]
            return stream.write(data)
        except (tornado.iostream.StreamClosedError, OSError) as error:
            raise ConnectionError("websocket closed") from error

    def _close_for_bus(self) -> None:
        self.close(1001, "server shutting down")
