"""A chat room over a WebSocket spoken by hand: the RFC 6455 handshake and masked client
frames written here with asyncio streams, no client library."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import struct

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def masked_text_frame(text: str) -> bytes:
    """A client's text frame: FIN, opcode 1, the mask bit and a random 4-byte mask."""
    payload, mask = text.encode(), os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, 0x80 | length)
    else:
        header = struct.pack("!BBH", 0x81, 0x80 | 126, length)
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await reader.readexactly(2)
    assert not second & 0x80, "a server's frames are never masked"
    length = second & 0x7F
    if length == 126:
        (length,) = struct.unpack("!H", await reader.readexactly(2))
    elif length == 127:
        (length,) = struct.unpack("!Q", await reader.readexactly(8))
    return first & 0x0F, await reader.readexactly(length)


async def read_json(reader: asyncio.StreamReader) -> dict:
    while True:
        opcode, payload = await asyncio.wait_for(read_frame(reader), 10)
        if opcode == 0x1:
            return json.loads(payload)


async def test_a_hand_made_websocket_receives_a_message_posted_over_http(
        api, base_url, admin_token):
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {admin_token}\r\n"
                  "\r\n").encode())
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    assert head.startswith("HTTP/1.1 101")
    expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()  # noqa: S324
    assert f"Sec-Websocket-Accept: {expected}".lower() in head.lower()

    writer.write(masked_text_frame(json.dumps(
        {"op": "subscribe", "topic": "chat:lobby", "after": 0})))
    assert await read_json(reader) == {"topic": "chat:lobby", "events": []}
    status, posted = await api.post("/api/chat/lobby/messages", {"text": "over HTTP"})
    assert status == 201
    frame = await read_json(reader)
    assert frame["topic"] == "chat:lobby"
    [event] = frame["events"]
    assert event["seq"] == posted["id"] and event["type"] == "message"
    assert event["data"] == {"room": "lobby", "user": "admin", "text": "over HTTP",
                             "kind": "message"}
    writer.write(b"\x88\x80" + os.urandom(4))      # a masked close frame, no payload
    writer.close()
