"""The readers of bench/chat.py, in a process of their own.

    python -m bench.chat_clients URL TOKEN TOPIC WEBSOCKETS LONGPOLLERS

WEBSOCKETS clients are bench/fanout_clients.py's lean RFC 6455 subscribers; LONGPOLLERS
clients loop on `GET /api/events?topic=T&after=SEQ&wait=25` over one keep-alive
connection each, as the browser's fallback does. Every client checks that seqs continue
its own (none lost, none twice) and times each message from the send time its sender
wrote at the end of the text (`… @<unix time>`). Prints "ready" once every client is
subscribed, reads the last seq from stdin, waits until every client has it (or 60 s),
then prints one JSON line of totals.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import sys
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench import fanout_clients
from bench.fanout_clients import Subscriber, Totals, percentile

STAMP = re.compile(rb"@(\d+\.\d+)")
STAMP_TEXT = re.compile(r"@(\d+\.\d+)$")
# The WebSocket subscribers time a frame by the number after its first and last "seq":
# for chat, that is the send time at the end of each message's text.
fanout_clients.DUE_NUMBER = STAMP


class LoopLag:
    """How late this process's event loop runs a callback due every 10 ms: the time a
    ready event waits for the CPU (or for other callbacks) before it is handled."""

    def __init__(self, every_s: float = 0.01) -> None:
        self.every_s = every_s
        self.lags: list[float] = []
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due = loop.time() + self.every_s
            await asyncio.sleep(self.every_s)
            self.lags.append(max(0.0, loop.time() - due))

    def stop(self, name: str) -> dict:
        self._task.cancel()
        lags = sorted(self.lags) or [0.0]
        return {f"{name}_lag_p50_ms": round(1000 * lags[len(lags) // 2], 1),
                f"{name}_lag_p99_ms": round(1000 * lags[int(0.99 * (len(lags) - 1))], 1)}


class Reader(Subscriber):
    """A WebSocket reader that, connected again after its socket closed, subscribes from
    the cursor it had (as the browser does), so a closed connection is not counted lost."""

    def __init__(self, *args, after: int = 0) -> None:
        super().__init__(*args)
        self.last = after

    def subscribe(self, after: int) -> None:
        super().subscribe(max(after, self.last))


class Poller:
    """One long-polling reader on a keep-alive HTTP/1.1 connection."""

    def __init__(self, host: str, port: int, token: str, topic: str, totals: Totals) -> None:
        self.host, self.port, self.token, self.topic = host, port, token, topic
        self.totals = totals
        self.last = 0
        self.requests = 0
        self.writer: asyncio.StreamWriter | None = None

    async def run(self, ready: asyncio.Future) -> None:
        for attempt in range(20):             # a busy server's accept queue may be full
            try:
                reader, self.writer = await asyncio.open_connection(self.host, self.port)
                break
            except OSError:
                await asyncio.sleep(0.1 * (attempt + 1))
        else:
            ready.set_exception(SystemExit("a long-poller could not connect"))
            return
        if not ready.done():
            ready.set_result(None)
        while True:
            self.writer.write((
                f"GET /api/events?topic={quote(self.topic)}&after={self.last}&wait=25 "
                f"HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Authorization: Bearer {self.token}\r\n\r\n").encode())
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            if not head.startswith("HTTP/1.1 200"):
                raise SystemExit(f"long-poll refused: {head[:200]!r}")
            length = int(re.search(r"(?i)content-length:\s*(\d+)", head).group(1))
            body = json.loads(await reader.readexactly(length))
            self.requests += 1
            self.on_events(body["events"], time.time())

    def on_events(self, events: list[dict], now: float) -> None:
        totals = self.totals
        for event in events:
            seq = event["seq"]
            if seq <= self.last:
                totals.duplicates += 1
                continue
            if seq > self.last + 1:
                totals.gaps += seq - self.last - 1
            self.last = seq
            totals.delivered += 1
            stamp = STAMP_TEXT.search(event["data"].get("text", ""))
            if stamp:
                totals.latency.append(now - float(stamp.group(1)))
                totals.weight.append(1.0)
        totals.frames += 1


def merged(*parts: Totals) -> Totals:
    total = Totals()
    for part in parts:
        total.latency.extend(part.latency)
        total.weight.extend(part.weight)
    return total


async def main(url: str, tokens_file: str, topic: str, websockets: int, pollers: int) -> None:
    """Reader n presents token n of the file (one a line), as each watcher has their own."""
    tokens = Path(tokens_file).read_text().split()
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    ws_totals, lp_totals = Totals(), Totals()

    async def connect(n: int, after: int = 0) -> tuple[asyncio.Transport, Subscriber]:
        for attempt in range(20):             # a busy server's accept queue may be full
            try:
                return await loop.create_connection(
                    lambda: Reader(parts.netloc, tokens[n % len(tokens)], topic, ws_totals,
                                   n % 10 == 0,
                                   after=after),
                    parts.hostname, parts.port)
            except OSError:
                await asyncio.sleep(0.1 * (attempt + 1))
        raise SystemExit("a WebSocket reader could not connect")

    sockets: list[Subscriber] = []
    for start in range(0, websockets, 100):        # connect in waves, not a SYN flood
        made = await asyncio.gather(*(connect(n) for n in
                                      range(start, min(websockets, start + 100))))
        sockets += [protocol for _, protocol in made]
    polls = [Poller(parts.hostname, parts.port, tokens[(websockets + n) % len(tokens)], topic,
                    lp_totals) for n in range(pollers)]
    ready = [loop.create_future() for _ in polls]
    tasks = [loop.create_task(p.run(r)) for p, r in zip(polls, ready, strict=True)]
    # A socket the server closed before subscribing it (on a loaded machine: its ping
    # timed out while the subscribe waited for the database) connects again, as a
    # browser would; nothing was sent yet, so nothing can be lost.
    reconnects = 0
    for _ in range(6000):                          # up to 600 s
        if all(c.acked.done() for c in sockets) and all(r.done() for r in ready):
            break
        for n, client in enumerate(sockets):
            if client.closed.done() and not client.acked.done() and reconnects < websockets:
                reconnects += 1
                sockets[n] = (await connect(n))[1]
        await asyncio.sleep(0.1)
    unacked = sum(not c.acked.done() for c in sockets)
    if unacked or not all(r.done() for r in ready):
        closed = sum(c.closed.done() for c in sockets)
        raise SystemExit(f"not subscribed after 600 s: {unacked} sockets ({closed} closed, "
                         f"{reconnects} reconnects), {sum(not r.done() for r in ready)} "
                         "long-pollers")
    for r in ready:
        r.result()
    gc.collect()
    gc.disable()
    print("ready", flush=True)
    lag = LoopLag()
    last = int(await loop.run_in_executor(None, sys.stdin.readline))
    resumed = 0
    for _ in range(1200):
        for n, client in enumerate(sockets):   # closed mid-run: resume from its cursor
            if client.closed.done() and client.last < last and resumed < websockets:
                resumed += 1
                sockets[n] = (await connect(n, client.last))[1]
        if (all(r.last >= last for r in [*sockets, *polls])
                or any(t.done() for t in tasks)):
            break
        await asyncio.sleep(0.05)
    readers = [*sockets, *polls]
    for task in tasks:
        if task.done() and task.exception():
            raise task.exception()
        task.cancel()
    for client in sockets:
        client.transport.close()
    everything = merged(ws_totals, lp_totals)
    print(json.dumps({
        "clients": len(readers), "websocket": len(sockets), "longpoll": len(polls),
        "delivered": ws_totals.delivered + lp_totals.delivered,
        "lost": sum(max(0, last - r.last) for r in readers) + ws_totals.gaps + lp_totals.gaps,
        "duplicated": ws_totals.duplicates + lp_totals.duplicates,
        "cut_off": ws_totals.cut_off, "longpoll_requests": sum(p.requests for p in polls),
        "p50_ms": round(1000 * percentile(everything, 0.50), 1),
        "p99_ms": round(1000 * percentile(everything, 0.99), 1),
        "max_ms": round(1000 * percentile(everything, 1.0), 1),
        "ws_p99_ms": round(1000 * percentile(ws_totals, 0.99), 1),
        "longpoll_p99_ms": round(1000 * percentile(lp_totals, 0.99), 1),
        "clients_cpu_s": round(time.process_time(), 1), "reconnects": reconnects,
        "resumed": resumed,
        **lag.stop("clients")}), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]),
                     int(sys.argv[5])))
