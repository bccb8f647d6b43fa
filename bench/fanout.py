"""Fan-out benchmark: C WebSocket subscribers on one topic, R events/s for S seconds.

    python -m bench.fanout --clients 1000 --rate 2000 --seconds 10

Starts the embedded database (a child process), runs Ferry (Services and the real
/ws handler) in this process and the subscribers in another (bench/fanout_clients.py:
lean asyncio clients). Phase 1 publishes through the EventBus (batched frames, one per client per
tick). Phase 2 sends the same load through a naive broadcaster, the textbook way:
`write_message` per event per client, futures ignored (Tornado's websocket demo).
Every event carries the time it was due; latency is receive time minus that. Each
phase publishes for S seconds of wall time (+0.5 s): the naive one gets through only
part of the schedule (its "published" says how much), and its latency counts how late
its events were, so naive_p99_ms is a lower bound of what the full load would cost it.

Final line, JSON: {"clients", "published", "delivered", "lost", "p50_ms", "p99_ms",
"naive_p99_ms", "rss_mb"} (rss_mb: this process's peak RSS during phase 1). A line
before it gives the details of both phases.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket

from server import make_app
from services import Services
from services.embedded_db import EmbeddedDatabase
from services.settings import Settings
from services.store import Store

ROOT = Path(__file__).resolve().parent.parent
TOPIC = "release:1"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.fanout", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=2000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--line-bytes", type=int, default=80,
                        help="size of each event's log line (default: %(default)s)")
    parser.add_argument("--skip-naive", action="store_true", help="only the EventBus phase")
    return parser.parse_args(argv)


class Clients:
    """A process of benchmark clients (`python -m MODULE ARGS...`): started, told the last
    seq, asked for its totals."""

    def __init__(self, module: str, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    async def ready(self) -> None:
        line = await asyncio.to_thread(self.process.stdout.readline)
        if line.strip() != "ready":
            raise RuntimeError(f"clients did not start: {line!r}")

    async def totals(self, last_seq: int) -> dict:
        self.process.stdin.write(f"{last_seq}\n")
        self.process.stdin.flush()
        line = await asyncio.to_thread(self.process.stdout.readline)
        await asyncio.to_thread(self.process.wait)
        return json.loads(line)


async def publish_at_rate(rate: float, seconds: float, line: str, publish) -> int:
    """Call `publish(seq, due, line)` for each event as it falls due, stopping half a
    second after the last one was due; returns how many were published (fewer than
    rate x seconds if it fell behind)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    stop = start + seconds + 0.5
    wall_start = time.time()
    total = int(rate * seconds)
    sent = 0
    while sent < total and loop.time() < stop:
        due_now = min(total, int((loop.time() - start) * rate) + 1)
        while sent < due_now and loop.time() < stop:
            sent += 1
            await publish(sent, wall_start + (sent - 1) / rate, line)
        await asyncio.sleep(0.001)
    return sent


class RssPeak:
    """Peak RSS of this process while running, and the CPU seconds it used."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.peak = self.process.memory_info().rss
        self.cpu = sum(self.process.cpu_times()[:2])
        self._task = asyncio.get_running_loop().create_task(self._sample())

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, self.process.memory_info().rss)
            await asyncio.sleep(0.25)

    def stop(self) -> dict:
        self._task.cancel()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return {"rss_mb": round(self.peak / 2**20, 1),
                "server_cpu_s": round(sum(self.process.cpu_times()[:2]) - self.cpu, 1)}


async def measure(args: argparse.Namespace, clients: Clients, rss: RssPeak,
                  publish) -> dict:
    """Publish at the rate for the time asked, then collect what every client saw."""
    started = time.monotonic()
    published = await publish_at_rate(args.rate, args.seconds, "x" * args.line_bytes, publish)
    publish_s = time.monotonic() - started
    totals = await clients.totals(published)
    return {**totals, **rss.stop(), "published": published, "publish_s": round(publish_s, 2)}


async def bus_phase(args: argparse.Namespace, url: str, data_dir: Path) -> dict:
    settings = Settings(data_dir=data_dir, mongo_url=url, db_name="fanout",
                        cookie_secret="bench", instance_id="bench")
    services = Services(settings, Store(url, settings.db_name))
    await services.open()
    await services.auth.ensure_admin("bench-password")
    admin = await services.auth.user("admin")
    token = await services.auth.create_token(admin, "bench")
    await services.store.releases.insert_one(
        {"_id": 1, "project": "bench", "environment": "bench", "state": "succeeded"})
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(services))
    server.add_sockets(sockets)
    gc.freeze()  # as server.py does once it is up
    clients = Clients("bench.fanout_clients", f"http://127.0.0.1:{sockets[0].getsockname()[1]}",
                      token, TOPIC, str(args.clients))
    try:
        await clients.ready()
        rss = RssPeak()

        async def publish(seq: int, due: float, line: str) -> None:
            await services.events.publish(TOPIC, "log", {"due": due, "line": line})

        return await measure(args, clients, rss, publish)
    finally:
        server.stop()
        await services.events.close_clients()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 5)
        await services.close()


class NaiveSocket(tornado.websocket.WebSocketHandler):
    """The textbook broadcaster's socket: joins a set on open, leaves it on close."""

    def initialize(self, waiters: set) -> None:
        self.waiters = waiters

    def open(self) -> None:
        self.waiters.add(self)

    def on_message(self, message: str | bytes) -> None:
        self.write_message({"topic": TOPIC, "events": []})

    def on_close(self) -> None:
        self.waiters.discard(self)


async def naive_phase(args: argparse.Namespace) -> dict:
    waiters: set = set()
    app = tornado.web.Application([(r"/ws", NaiveSocket, {"waiters": waiters})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    clients = Clients("bench.fanout_clients", f"http://127.0.0.1:{sockets[0].getsockname()[1]}",
                      "-", TOPIC, str(args.clients))
    try:
        await clients.ready()
        rss = RssPeak()

        async def publish(seq: int, due: float, line: str) -> None:
            message = json.dumps({"topic": TOPIC, "events": [{
                "topic": TOPIC, "seq": seq, "type": "log", "ts": time.time(),
                "data": {"due": due, "line": line}}]})
            for waiter in list(waiters):          # one write per event per client
                with contextlib.suppress(tornado.websocket.WebSocketClosedError):
                    waiter.write_message(message)
            await asyncio.sleep(0)

        return await measure(args, clients, rss, publish)
    finally:
        server.stop()
        for waiter in list(waiters):
            waiter.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 5)


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-fanout-") as tmp:
        async with EmbeddedDatabase(":memory:") as database:
            bus = await bus_phase(args, database.url, Path(tmp))
    naive = None if args.skip_naive else await naive_phase(args)
    print(json.dumps({"bus": bus, "naive": naive,
                      "cpus": psutil.cpu_count(), "args": vars(args)}), flush=True)
    return {"clients": bus["clients"], "published": bus["published"],
            "delivered": bus["delivered"], "lost": bus["lost"], "p50_ms": bus["p50_ms"],
            "p99_ms": bus["p99_ms"], "naive_p99_ms": naive["p99_ms"] if naive else None,
            "rss_mb": bus["rss_mb"]}


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    print(json.dumps(asyncio.run(run(args))), flush=True)


if __name__ == "__main__":
    main()
