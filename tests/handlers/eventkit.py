"""Helpers for the event transport tests: a raw RFC 6455 client, a Tornado WebSocket
client, app servers for extra instances, and a release to publish on."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.websocket

from server import make_app
from services import Services
from services.settings import Settings
from services.store import Store

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"   # RFC 6455, section 1.3


async def make_release(services: Services, release_id: int = 1) -> str:
    """A release document the "release:" topic check accepts; returns its topic.
    (Finished, so that another instance's crash recovery leaves it alone.)"""
    await services.store.releases.insert_one(
        {"_id": release_id, "project": "p", "environment": "production", "state": "succeeded"})
    return f"release:{release_id}"


def ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/ws"


async def ws_connect(base_url: str, token: str | None, **headers: str
                     ) -> tornado.websocket.WebSocketClientConnection:
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = tornado.httpclient.HTTPRequest(ws_url(base_url), headers=headers)
    return await tornado.websocket.websocket_connect(request, max_message_size=64 * 2**20)


async def next_message(conn, within: float = 10.0) -> dict:
    message = await asyncio.wait_for(conn.read_message(), within)
    assert message is not None, f"socket closed: {conn.close_code} {conn.close_reason}"
    return json.loads(message)


async def collect(conn, topic: str, last_seq: int, within: float = 30.0) -> list[dict]:
    """Events of `topic` from frames until one with seq `last_seq` arrives."""
    events: list[dict] = []
    deadline = time.monotonic() + within
    while not events or events[-1]["seq"] < last_seq:
        frame = await next_message(conn, deadline - time.monotonic())
        assert "error" not in frame, frame
        if frame["topic"] == topic:
            events.extend(frame["events"])
    return events


@asynccontextmanager
async def instance(settings: Settings) -> AsyncIterator[tuple[Services, str]]:
    """Another Ferry instance (Services + HTTP server) on `settings`' database."""
    services = Services(settings, Store(settings.mongo_url, settings.db_name))
    await services.open()
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(services))
    server.add_sockets(sockets)
    try:
        yield services, f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    finally:
        server.stop()
        await services.events.close_clients()
        await server.close_all_connections()
        await services.close()


class RawWebSocket:
    """Just enough RFC 6455 over a plain socket to check the server's framing."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def handshake(cls, base_url: str, token: str, key: str, receive_buffer: int = 0,
                        **headers: str) -> tuple[RawWebSocket, int, dict[str, str]]:
        """Connect and upgrade; `receive_buffer` shrinks the socket's kernel buffer."""
        host, port = base_url.removeprefix("http://").split(":")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
        reader, writer = await asyncio.open_connection(sock=sock)
        lines = ["GET /ws HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", f"Authorization: Bearer {token}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
        status_line, *header_lines = head.strip().split("\r\n")
        response = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            response[name.strip().lower()] = value.strip()
        return cls(reader, writer), int(status_line.split()[1]), response

    def send_text(self, text: str) -> None:
        """One masked text frame, as a client must send it."""
        payload = text.encode()
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x81, 0x80 | length)
        elif length < 2**16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

    async def read_frame(self) -> tuple[int, bytes, int]:
        """(opcode, payload, size of the length field in bits: 7, 16 or 64)."""
        first, second = await self.reader.readexactly(2)
        assert first & 0x80, "FIN expected: the server sends whole messages"
        assert not second & 0x80, "server frames must not be masked"
        length, bits = second & 0x7F, 7
        if length == 126:
            (length,), bits = struct.unpack("!H", await self.reader.readexactly(2)), 16
        elif length == 127:
            (length,), bits = struct.unpack("!Q", await self.reader.readexactly(8)), 64
        return first & 0x0F, await self.reader.readexactly(length), bits

    async def read_json(self, within: float = 10.0) -> tuple[dict, int]:
        while True:
            opcode, payload, bits = await asyncio.wait_for(self.read_frame(), within)
            if opcode == 0x1:
                return json.loads(payload), bits
            assert opcode in (0x9, 0xA), f"unexpected opcode {opcode}"   # ping/pong

    def close(self) -> None:
        self.writer.close()


def accept_for(key: str) -> str:
    digest = hashlib.sha1((key + GUID).encode()).digest()   # noqa: S324 (RFC 6455 says SHA-1)
    return base64.b64encode(digest).decode()
