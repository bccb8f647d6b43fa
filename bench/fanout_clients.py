"""The subscribers of bench/fanout.py, in a process of their own.

    python -m bench.fanout_clients URL TOKEN TOPIC CLIENTS

Opens CLIENTS WebSocket connections (plain asyncio protocols speaking RFC 6455, so
that the clients cost as little CPU as possible), subscribes each to TOPIC from 0,
prints "ready" once every subscription is acknowledged, then reads one line from
stdin: the last seq published. It waits until every client has it (or 60 s), then
prints one JSON line of totals.

Per frame a client checks that the seqs continue its own (none lost, none twice) and
(one client in ten) that the frame holds as many events as its seq range; it records
latency as receive time minus the `due` time the publisher stamped on the event (when
the event was scheduled, so a publisher running late counts as latency). It reads the first
and the last event of a frame exactly and spreads the frame's events evenly between
them (the publisher runs at a constant rate), instead of parsing every event.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import json
import os
import re
import struct
import sys
import time
from array import array
from urllib.parse import urlsplit

SEQ = b'"seq":'
SEQ_NUMBER = re.compile(rb'"seq":\s*(\d+)')
DUE_NUMBER = re.compile(rb'"due":\s*([0-9.eE+-]+)')
VERIFY_EVERY = 10    # one client in ten also counts the events inside each frame


class Totals:
    def __init__(self) -> None:
        self.delivered = 0
        self.duplicates = 0
        self.gaps = 0
        self.malformed = 0
        self.cut_off = 0
        self.frames = 0
        self.latency = array("d")     # seconds; two samples per frame: first, last event
        self.weight = array("d")      # events each sample stands for
        self.worst_by_second: dict[int, float] = {}       # due second -> worst latency


def _number_after(buffer: bytearray, pattern: re.Pattern, start: int) -> float:
    return float(pattern.search(buffer, start).group(1))


class Subscriber(asyncio.Protocol):
    def __init__(self, host: str, token: str, topic: str, totals: Totals,
                 verify: bool) -> None:
        self.host, self.token, self.topic, self.totals = host, token, topic, totals
        self.verify = verify     # count every event of every frame (costs a scan)
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
        buffer, position = self.buffer, 0
        while len(buffer) - position >= 2:
            length, offset = buffer[position + 1] & 0x7F, position + 2
            if length == 126:
                if len(buffer) < offset + 2:
                    break
                (length,), offset = struct.unpack_from("!H", buffer, offset), offset + 2
            elif length == 127:
                if len(buffer) < offset + 8:
                    break
                (length,), offset = struct.unpack_from("!Q", buffer, offset), offset + 8
            if len(buffer) < offset + length:
                break
            opcode = buffer[position] & 0x0F
            position = offset + length
            if opcode == 0x1:
                self.on_frame(buffer, offset, position)
            elif opcode == 0x9:
                self.send(0xA, bytes(buffer[offset:position]))   # pong, or Tornado closes us
            elif opcode == 0x8:
                self.transport.close()
        if position:
            del buffer[:position]

    def on_frame(self, buffer: bytearray, start: int, end: int) -> None:
        """Check and time one text frame, read in place: buffer[start:end]."""
        now = time.time()
        totals = self.totals
        first = buffer.find(SEQ, start, end)
        if first < 0 or buffer.find(b'"reason"', start, min(end, start + 300)) >= 0:
            message = json.loads(bytes(buffer[start:end]))
            if message.get("reason") == "cut_off":
                totals.cut_off += 1
                self.subscribe(self.last)        # resume by cursor, as a browser would
                return
            if "error" in message:
                raise SystemExit(f"error frame: {message}")
            if not self.acked.done():
                self.acked.set_result(None)
            return
        last_position = buffer.rfind(SEQ, start, end)
        first_seq = int(_number_after(buffer, SEQ_NUMBER, first))
        last_seq = int(_number_after(buffer, SEQ_NUMBER, last_position))
        count = last_seq - first_seq + 1
        if self.verify and buffer.count(SEQ, start, end) != count:
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
        if not self.acked.done():
            self.acked.set_result(None)
        oldest = _number_after(buffer, DUE_NUMBER, first)
        newest = _number_after(buffer, DUE_NUMBER, last_position)
        totals.latency.extend((now - oldest, now - newest))
        totals.weight.extend((count / 2, count / 2))
        second = int(oldest)
        if now - oldest > totals.worst_by_second.get(second, 0.0):
            totals.worst_by_second[second] = now - oldest

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(exc)


def percentile(totals: Totals, fraction: float) -> float:
    if not totals.latency:
        return 0.0
    ordered = sorted(zip(totals.latency, totals.weight, strict=True))
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
            lambda n=n: Subscriber(parts.netloc, token, topic, totals, n % VERIFY_EVERY == 0),
            parts.hostname, parts.port) for n in range(start, min(count, start + 100))))
        clients += [protocol for _, protocol in made]
    await asyncio.wait_for(asyncio.gather(*(c.acked for c in clients)), 120)
    gc.collect()
    gc.disable()     # a measuring tool: no collector pauses in the numbers (runs are short)
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
        "p50_ms": round(1000 * percentile(totals, 0.50), 1),
        "p99_ms": round(1000 * percentile(totals, 0.99), 1),
        "max_ms": round(1000 * percentile(totals, 1.0), 1),
        "clients_cpu_s": round(time.process_time(), 1),
        "worst_ms_by_second": [round(1000 * totals.worst_by_second[second])
                               for second in sorted(totals.worst_by_second)]}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
