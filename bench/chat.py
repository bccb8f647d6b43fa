"""Chat benchmark: C readers in one room, S senders posting R messages/s for T seconds.

    python -m bench.chat --clients 1000 --senders 50 --rate 20 --seconds 60

Starts the embedded database (a child process) and Ferry (Services and the real HTTP
handlers) in this process; the readers run in another (bench/chat_clients.py): most on
WebSocket, `--longpoll` of them long-polling /api/events. The senders are S users, each
posting its share over HTTP (`POST /api/chat/lobby/messages`, so through validation,
the rate limit and the database write), the send time written at the end of the text.
Latency is the time a reader got a message minus the time its POST was sent.

Final line, JSON: {"clients", "websocket", "longpoll", "senders", "published", "refused",
"lost", "duplicated", "p50_ms", "p99_ms", "ws_p99_ms", "longpoll_p99_ms", "rss_mb",
"post_p99_ms", "server_lag_p99_ms", "clients_lag_p99_ms"} (rss_mb: this process's peak
RSS: Ferry plus the senders' HTTP client; post_*: from sending a POST to its answer;
*_lag: how late each side's event loop ran a 10 ms timer, so a run can tell Ferry being
slow from the readers being slow). A line before it gives the details (CPU seconds of
both sides among them). `--profile FILE` writes a cProfile of
Ferry's process during the sending.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import gc
import json
import os
import tempfile
import time
from pathlib import Path

import psutil
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from bench.chat_clients import LoopLag
from bench.fanout import Clients, RssPeak
from server import make_app
from services import Services
from services.embedded_db import EmbeddedDatabase
from services.settings import Settings
from services.store import Store

ROOT = Path(__file__).resolve().parent.parent
ROOM = "lobby"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chat", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=1000, help="readers in the room")
    parser.add_argument("--longpoll", type=int, default=20,
                        help="how many of the readers long-poll (default: %(default)s)")
    parser.add_argument("--senders", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20, help="messages per second, total")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--ws-auth-recheck-s", type=float, default=None,
                        help="Ferry's ws_auth_recheck_s (default: the setting's default): "
                             "each socket's periodic credential check reads the database")
    parser.add_argument("--fanout-tick-s", type=float, default=None,
                        help="Ferry's fanout_tick_s (default: the setting's default)")
    parser.add_argument("--readers-nice", type=int, default=0,
                        help="CPU priority of the readers' process (they stand for "
                             "browsers on other machines)")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a cProfile of Ferry's process while sending to FILE")
    return parser.parse_args(argv)


async def send_all(url: str, tokens: list[str], rate: float, seconds: float) -> dict:
    """Each message goes out when it falls due, from sender n % S, without waiting for
    the answers to the earlier ones."""
    client = tornado.httpclient.AsyncHTTPClient(max_clients=len(tokens) + 10)
    loop = asyncio.get_running_loop()
    start, total = loop.time(), int(rate * seconds)
    results: list[tuple[int, int]] = []
    answered: list[float] = []      # seconds from sending a POST to its answer

    async def send(n: int) -> None:
        sent = time.time()
        body = json.dumps({"text": f"sender {n % len(tokens)} message {n} @{sent:.6f}"})
        try:
            response = await client.fetch(
                f"{url}/api/chat/{ROOM}/messages", method="POST", body=body,
                raise_error=False, connect_timeout=300, request_timeout=300,
                headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}",
                         "Content-Type": "application/json"})
        except Exception:                 # counted as refused: the reader totals show it
            results.append((599, 0))
            return
        seq = json.loads(response.body)["id"] if response.code == 201 else 0
        results.append((response.code, seq))
        answered.append(time.time() - sent)

    tasks = []
    for n in range(total):
        delay = start + n / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(send(n)))
    await asyncio.gather(*tasks)
    client.close()
    codes = [code for code, _ in results]
    refused = {str(code): codes.count(code) for code in sorted(set(codes)) if code != 201}
    return {"published": codes.count(201), "refused": len(codes) - codes.count(201),
            "refused_by_code": refused,
            "last_seq": max((seq for _, seq in results), default=0),
            "post_p50_ms": _percentile_ms(answered, 0.50),
            "post_p99_ms": _percentile_ms(answered, 0.99),
            "send_s": round(loop.time() - start, 2)}


def _percentile_ms(values: list[float], fraction: float) -> float:
    ordered = sorted(values) or [0.0]
    return round(1000 * ordered[int(fraction * (len(ordered) - 1))], 1)


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-chat-") as tmp:
        async with EmbeddedDatabase(":memory:") as database:
            overrides = {name: value for name, value in (
                ("ws_auth_recheck_s", args.ws_auth_recheck_s),
                ("fanout_tick_s", args.fanout_tick_s)) if value is not None}
            settings = Settings(data_dir=Path(tmp), mongo_url=database.url, db_name="chat",
                                cookie_secret="bench", instance_id="bench", **overrides)
            services = Services(settings, Store(database.url, settings.db_name))
            await services.open()
            await services.auth.ensure_admin("bench-password")
            # Every reader its own credential, as every watcher has their own session.
            reader = await services.auth.user("admin")
            tokens_file = Path(tmp) / "reader-tokens"
            tokens_file.write_text("\n".join([await services.auth.create_token(reader, "bench")
                                              for _ in range(args.clients)]))
            tokens = []
            for n in range(args.senders):
                user = await services.auth.create_user(f"sender{n}", "bench-password",
                                                       "viewer")
                tokens.append(await services.auth.create_token(user, "bench"))
            sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
            server = tornado.httpserver.HTTPServer(make_app(services))
            server.add_sockets(sockets)
            url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
            gc.freeze()
            longpoll = min(args.longpoll, args.clients)
            readers = Clients("bench.chat_clients", url, str(tokens_file), f"chat:{ROOM}",
                              str(args.clients - longpoll), str(longpoll))
            if args.readers_nice:
                os.setpriority(os.PRIO_PROCESS, readers.process.pid, args.readers_nice)
            try:
                await readers.ready()
                rss, lag = RssPeak(), LoopLag()
                profile = cProfile.Profile() if args.profile else None
                if profile is not None:
                    profile.enable()
                sent = await send_all(url, tokens, args.rate, args.seconds)
                totals = await readers.totals(sent["last_seq"])
                if profile is not None:
                    profile.disable()
                    profile.dump_stats(args.profile)
                totals.update(lag.stop("server"))
                return {**totals, **sent, **rss.stop(), "senders": args.senders}
            finally:
                server.stop()
                await services.events.close_clients()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(server.close_all_connections(), 5)
                await services.close()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    details = asyncio.run(run(args))
    print(json.dumps({**details, "cpus": psutil.cpu_count(), "args": vars(args)}), flush=True)
    keys = ("clients", "websocket", "longpoll", "senders", "published", "refused", "lost",
            "duplicated", "p50_ms", "p99_ms", "ws_p99_ms", "longpoll_p99_ms", "rss_mb",
            "post_p99_ms", "server_lag_p99_ms", "clients_lag_p99_ms")
    print(json.dumps({key: details.get(key) for key in keys}), flush=True)


if __name__ == "__main__":
    main()
