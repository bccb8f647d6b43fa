"""Ferry's JSON API and event stream from the command line, over Tornado's own HTTP and
WebSocket clients (the server's library: nothing else to install, no protocol code here)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import tornado.httpclient
import tornado.websocket

from cli.config import Credentials

LONG_POLL_WAIT_S = 25


class ApiError(Exception):
    """The server refused (4xx/5xx) or could not be reached (status 0)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StreamLost(Exception):
    """The WebSocket closed or never opened: the caller falls back to long-polling."""


class FerryClient:
    def __init__(self, credentials: Credentials, timeout_s: float = 60) -> None:
        self.url = credentials.url
        self.token = credentials.token
        self.timeout_s = timeout_s
        self.http = tornado.httpclient.AsyncHTTPClient()

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        return headers

    async def request(self, method: str, path: str, body: Any = None, *,
                      timeout_s: float | None = None) -> Any:
        """JSON in and out; a refusal raises ApiError with the server's message."""
        payload = json.dumps(body).encode() if body is not None else (
            b"" if method in ("POST", "PUT", "PATCH") else None)
        try:
            response = await self.http.fetch(
                self.url + path, method=method, body=payload, headers=self._headers(),
                raise_error=False, request_timeout=timeout_s or self.timeout_s,
                connect_timeout=10, follow_redirects=False)
        except OSError as error:
            raise ApiError(0, f"cannot reach {self.url}: {error.strerror or error}") from None
        if response.code == 599:
            raise ApiError(0, f"cannot reach {self.url}: {response.error}")
        text = response.body.decode(errors="replace") if response.body else ""
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        if response.code >= 400:
            message = data.get("message") if isinstance(data, dict) else None
            raise ApiError(response.code, message or f"HTTP {response.code}")
        return data

    async def get(self, path: str, **query: Any) -> Any:
        query = {key: value for key, value in query.items() if value is not None}
        return await self.request("GET", path + (f"?{urlencode(query)}" if query else ""))

    async def post(self, path: str, body: Any = None) -> Any:
        return await self.request("POST", path, body)

    # -- events ---------------------------------------------------------------------------

    async def websocket_events(self, topic: str, after: int) -> AsyncIterator[dict]:
        """Events of `topic` after `after`, live over /ws; StreamLost when it cannot."""
        ws_url = "ws" + self.url[len("http"):] + "/ws"
        request = tornado.httpclient.HTTPRequest(ws_url, headers=self._headers(),
                                                 connect_timeout=10, request_timeout=10)
        try:
            connection = await tornado.websocket.websocket_connect(request)
        except (TimeoutError, OSError, tornado.httpclient.HTTPClientError) as error:
            raise StreamLost(str(error)) from None
        try:
            await connection.write_message(json.dumps({"op": "subscribe", "topic": topic,
                                                       "after": after}))
            while True:
                message = await connection.read_message()
                if message is None:
                    raise StreamLost("the event stream closed")
                frame = json.loads(message)
                if "error" in frame:
                    if frame.get("reason") == "cut_off":
                        raise StreamLost("fell behind")
                    raise ApiError(400, frame["error"])
                for event in frame.get("events", []):
                    yield event
        finally:
            connection.close()

    async def polled_events(self, topic: str, after: int) -> AsyncIterator[dict]:
        """The same events by long-polling /api/events."""
        while True:
            page = await self.request(
                "GET", f"/api/events?topic={quote(topic)}&after={after}&wait={LONG_POLL_WAIT_S}",
                timeout_s=LONG_POLL_WAIT_S + 30)
            for event in page["events"]:
                yield event
            after = page["next"]

    async def events(self, topic: str, after: int, *, websocket: bool = True,
                     on_fallback: Any = None) -> AsyncIterator[dict]:
        """Events of `topic` after `after`, none lost or repeated: WebSocket first, then
        long-polling from the last seq seen if the socket cannot be had or is lost."""
        if websocket:
            try:
                async for event in self.websocket_events(topic, after):
                    after = event["seq"]
                    yield event
            except StreamLost as lost:
                if on_fallback:
                    on_fallback(str(lost))
        async for event in self.polled_events(topic, after):
            yield event
