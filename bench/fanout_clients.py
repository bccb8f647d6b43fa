"""The subscribers of bench/fanout.py, in a process of their own.

    python -m bench.fanout_clients URL TOKEN TOPIC CLIENTS

Opens CLIENTS WebSocket connections (plain asyncio protocols speaking RFC 6455, so
that the clients cost as little CPU as possible), subscribes each to TOPIC from 0,
prints "ready" once every subscription is acknowledged, then reads one line from
stdin: the last seq published. It waits until every client has it (or 60 s), then
prints one JSON line of totals.

Per frame a client checks that the seqs continue its own (none lost, none twice) and
that the frame holds as many events as its seq range, then records latency as
receive time minus the `due` time the publisher stamped on the event (when the event
was scheduled, so a publisher running late counts as latency). It reads the first
and the last event of a frame exactly and spreads the frame's events evenly between
them (the publisher runs at a constant rate), instead of parsing every event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import sys
import time
from urllib.parse import urlsplit

SEQ, DUE = b'"seq":', b'"due":'


class Totals:
    def __init__(self) -> None:
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0
        self.malformed = 0
        self.cut_off = 0
        self.frames = 0
        self.latencies: list[tuple[float, float]] = []   # (latency s, weight in events)


def _number_after(payload: bytes, marker: bytes, start: int) -> tuple[float, int]:
    position = payload.index(marker, start) + len(marker)
    end = position
    while payload[end] in b"0123456789.eE+-":
        end += 1
    return float(payload[position:end]), position


class Subscriber(asyncio.Protocol):
    def __init__(self, host: str, token: str, topic: str, totals: Totals) -> None:
        self.host, self.token, self.topic, self.totals = host, token, topic, totals
        self.buffer = bytearray()
        self.upgraded = False
        self.acked = asyncio.get_running_loop().create_future()
        self.closed = asyncio.get_running_loop().create_future()
        self.last = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport     # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write((
            f"GET /ws HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            f"Sec-WebSocket-Version: 13\r\nAuthorization: Bearer {self.token}\r\n\r\n"
        ).encode())

    def send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        length = len(payload)
        header = (struct.pack("!BB", 0x80 | opcode, 0x80 | length) if length < 126 else
                  struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.transport.write(header + mask + masked)

    def subscribe(self, after: int) -> None:
        self.send(0x1, json.dumps({"op": "subscribe", "topic": self.topic,
                                   "after": after}).encode())

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            if not self.buffer.startswith(b"HTTP/1.1 101"):
                raise SystemExit(f"handshake refused: {bytes(self.buffer[:200])!r}")
            del self.buffer[:end + 4]
            self.upgraded = True
            self.subscribe(0)
        while len(self.buffer) >= 2:
            length, offset = self.buffer[1] & 0x7F, 2
            if length == 126:
                if len(self.buffer) < 4:
                    return
                (length,), offset = struct.unpack_from("!H", self.buffer, 2), 4
            elif length == 127:
                if len(self.buffer) < 10:
                    return
                (length,), offset = struct.unpack_from("!Q", self.buffer, 2), 10
            if len(self.buffer) < offset + length:
                return
            opcode = self.buffer[0] & 0x0F
            payload = bytes(self.buffer[offset:offset + length])
            del self.buffer[:offset + length]
            if opcode == 0x1:
                self.on_frame(payload)
            elif opcode == 0x9:
                self.send(0xA, payload)          # pong, or Tornado closes us
            elif opcode == 0x8:
                self.transport.close()

    def on_frame(self, payload: bytes) -> None:
        now = time.time()
        totals = self.totals
        if payload.startswith(b'{"error"') or b'"reason"' in payload[:200]:
            message = json.loads(payload)
            if message.get("reason") == "cut_off":
                totals.cut_off += 1
                self.subscribe(self.last)        # resume by cursor, as a browser would
                return
            raise SystemExit(f"error frame: {message}")
        if not self.acked.done():
            self.acked.set_result(None)
        first = payload.find(SEQ)
        if first < 0:
            return
        count = payload.count(SEQ)
        first_seq, _ = _number_after(payload, SEQ, first)
        last_position = payload.rfind(SEQ)
        last_seq, _ = _number_after(payload, SEQ, last_position)
        first_seq, last_seq = int(first_seq), int(last_seq)
        if last_seq - first_seq + 1 != count:
            totals.malformed += 1
        if first_seq <= self.last:
            totals.duplicates += self.last - first_seq + 1
        elif first_seq > self.last + 1:
            totals.gaps += first_seq - self.last - 1
        fresh = last_seq - max(self.last, first_seq - 1)
        if fresh > 0:
            totals.delivered += fresh
            self.last = last_seq
        totals.frames += 1
        oldest, _ = _number_after(payload, DUE, first)
        newest, _ = _number_after(payload, DUE, last_position)
        totals.latencies.append((now - oldest, count / 2))
        totals.latencies.append((now - newest, count / 2))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


def percentile(samples: list[tuple[float, float]], fraction: float) -> float:
    if not samples:
        return 0.0
    ordered = sorted(samples)
    target = fraction * sum(weight for _, weight in ordered)
    seen = 0.0
    for latency, weight in ordered:
        seen += weight
        if seen >= target:
            return latency
    return ordered[-1][0]


async def main(url: str, token: str, topic: str, count: int) -> None:
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    totals = Totals()
    clients: list[Subscriber] = []
    for start in range(0, count, 100):           # connect in waves, not a SYN flood
        made = await asyncio.gather(*(loop.create_connection(
            lambda: Subscriber(parts.netloc, token, topic, totals), parts.hostname, parts.port)
            for _ in range(start, min(count, start + 100))))
        clients += [protocol for _, protocol in made]
    await asyncio.wait_for(asyncio.gather(*(c.acked for c in clients)), 120)
    print("ready", flush=True)
    line = await loop.run_in_executor(None, sys.stdin.readline)
    last = int(line)
    for _ in range(1200):                       # up to 60 s for the stragglers
        if all(c.last >= last for c in clients):
            break
        await asyncio.sleep(0.05)
    for client in clients:
        client.transport.close()
    print(json.dumps({
        "clients": len(clients), "delivered": totals.delivered,
        "lost": sum(max(0, last - c.last) for c in clients) + totals.gaps,
        "duplicates": totals.duplicates, "malformed": totals.malformed,
        "cut_off": totals.cut_off, "frames": totals.frames,
        "p50_ms": round(1000 * percentile(totals.latencies, 0.50), 1),
        "p99_ms": round(1000 * percentile(totals.latencies, 0.99), 1),
        "max_ms": round(1000 * percentile(totals.latencies, 1.0), 1)}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
