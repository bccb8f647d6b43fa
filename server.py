"""Ferry: options, the embedded database, Services, the web app, and a graceful stop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import gc
import ipaddress
import logging
import os
import secrets
import signal
import socket
import sys
from pathlib import Path

try:
    import tornado.httpserver
    import tornado.web

    from handlers import HEALTH_ROUTES, ROUTES
    from handlers.access import check_routes
    from services import Services, embedded_db
    from services.datadir import DataDirError, DataDirLock
    from services.embedded_db import EmbeddedDatabaseError
    from services.settings import Settings
    from services.store import Store
except ModuleNotFoundError as missing:
    # A Python without Ferry's dependencies (the system one, outside .venv): one line that
    # says what to do, not a traceback. A module of Ferry's own that is missing is a bug.
    if (missing.name or "").partition(".")[0] in ("handlers", "services", "fleet"):
        raise
    sys.exit(f"ferry: Ferry's dependencies are not installed in this Python ({sys.executable}:"
             f" no module {missing.name!r}): run `make demo`, or use .venv/bin/python server.py")

log = logging.getLogger("ferry")
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="server.py", description="Ferry: ship a git ref to a fleet of SSH hosts.")
    parser.add_argument("--address", default="127.0.0.1",
                        help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8700,
                        help="HTTP port to listen on (default: %(default)s)")
    parser.add_argument("--data-dir", default="ferry-data", type=Path,
                        help="where Ferry keeps git mirrors, artifacts, known_hosts, the cookie "
                             "secret and the embedded database (default: %(default)s)")
    parser.add_argument("--mongo-url", default=None,
                        help="MongoDB URL to use instead of starting the embedded database; "
                             "for production, a replica set (e.g. "
                             "mongodb://db1,db2,db3/?replicaSet=rs0&w=majority)")
    parser.add_argument("--db-name", default="ferry",
                        help="database name inside MongoDB (default: %(default)s)")
    parser.add_argument("--allow-file-urls", action="store_true",
                        help="let projects use file:// repository URLs and local paths on "
                             "this server (off by default; --demo turns it on)")
    parser.add_argument("--allow-private-remotes", action="store_true",
                        help="let repository URLs reach loopback, private and link-local "
                             "addresses (refused by default)")
    parser.add_argument("--allow-network", action="append", default=[], type=_network,
                        metavar="CIDR", help="a network repository URLs may reach even "
                        "though it is private, e.g. 10.20.0.0/16 for an internal git "
                        "server (repeatable)")
    parser.add_argument("--demo", action="store_true",
                        help="start a demo fleet of local SSH hosts and register a demo "
                             "project with a few tagged versions")
    parser.add_argument("--demo-hosts", type=int, default=20,
                        help="how many demo hosts --demo starts (default: %(default)s)")
    parser.add_argument("--admin-password", default=os.environ.get("FERRY_ADMIN_PASSWORD"),
                        help="password for the first admin user, when none exists yet "
                             "(default: generated and printed; env FERRY_ADMIN_PASSWORD)")
    parser.add_argument("--allow-private-notifications", action="store_true",
                        help="let notification channels reach loopback, private and "
                             "link-local addresses (setting notify_allow_private)")
    parser.add_argument("--public-url", default="",
                        help="the address people reach Ferry at, for links in "
                             "notifications (e.g. https://ferry.example.com)")
    parser.add_argument("--metrics-token", default=os.environ.get("FERRY_METRICS_TOKEN", ""),
                        help="bearer token /metrics requires (env FERRY_METRICS_TOKEN); "
                             "without it and without --metrics-port, an admin's credentials")
    parser.add_argument("--metrics-port", type=int, default=0,
                        help="serve /metrics on its own listener at --metrics-address "
                             "(and not on the main port)")
    parser.add_argument("--metrics-address", default="127.0.0.1",
                        help="address of the metrics listener (default: %(default)s)")
    parser.add_argument("--log-level", default="INFO",
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    return parser.parse_args(argv)


def cookie_secret(data_dir: Path) -> str:
    """The signing key for session cookies, made once and kept in the data dir (0600)."""
    path = data_dir / "cookie_secret"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def log_request(handler: tornado.web.RequestHandler) -> None:
    """One line per request: level by status, user, ms; static hits at debug."""
    status = handler.get_status()
    if status >= 500:
        level = logging.ERROR
    elif status >= 400:
        level = logging.WARNING
    elif handler.request.path.startswith(("/static/", "/vendor/")):
        level = logging.DEBUG
    else:
        level = logging.INFO
    user = getattr(handler, "current_user", None) if hasattr(handler, "_user") else None
    who = f"{user.name}@" if user else ""
    # The client as the sign-in throttle sees it (X-Forwarded-For only from trusted proxies).
    address = handler.client_address() if hasattr(handler, "client_address") else (
        handler.request.remote_ip)
    ms = 1000.0 * handler.request.request_time()
    # The path only: a query string can carry a token or a password.
    log.log(level, "%d %s %s (%s%s) %.1fms", status, handler.request.method,
            handler.request.path, who, address, ms)
    services = handler.settings.get("services")
    if services is not None:
        services.metrics.observe_request(type(handler).__name__, handler.request.method or "",
                                         status, ms / 1000)


def _network(text: str) -> str:
    """A CIDR for --allow-network, checked at start-up rather than at the first fetch."""
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a network: {text!r} (e.g. 10.20.0.0/16)") \
            from None


def make_app(services: Services) -> tornado.web.Application:
    """The Tornado application over `services`; every route checked for an access mark."""
    settings = services.settings
    check_routes(ROUTES)
    return tornado.web.Application(
        ROUTES,
        services=services,
        template_path=str(HERE / "templates"),
        static_path=str(HERE / "static"),
        cookie_secret=settings.cookie_secret or secrets.token_hex(32),
        xsrf_cookies=settings.xsrf_cookies,
        xsrf_cookie_kwargs={"samesite": "Strict"},
        login_url="/login",
        autoescape="xhtml_escape",
        websocket_ping_interval=settings.ws_ping_interval_s,
        websocket_ping_timeout=settings.ws_ping_timeout_s,
        websocket_max_message_size=settings.ws_max_message_bytes,
        log_function=log_request,
        compress_response=True,
    )


def make_metrics_app(services: Services) -> tornado.web.Application:
    """The separate metrics listener: /metrics (and the probes) only."""
    return tornado.web.Application(HEALTH_ROUTES, services=services, metrics_listener=True,
                                   log_function=log_request)


class StartupError(RuntimeError):
    """Ferry cannot start; the message is the one line (or the database's lines) to show."""


def bind(address: str, port: int) -> list[socket.socket]:
    """The HTTP listening sockets, bound before anything starts, so a busy port fails fast."""
    try:
        return tornado.netutil.bind_sockets(port, address, family=socket.AF_INET)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise StartupError(f"port {port} on {address} is already in use; stop what holds "
                               f"it or choose another with --port (PORT= for make demo)"
                               ) from None
        raise StartupError(f"cannot listen on {address}:{port}: {error.strerror}") from None


def listen(app: tornado.web.Application, settings: Settings,
           sockets: list[socket.socket]) -> tornado.httpserver.HTTPServer:
    server = tornado.httpserver.HTTPServer(
        app, max_body_size=settings.max_body_bytes, max_header_size=64 * 1024,
        idle_connection_timeout=3600, body_timeout=60)
    server.add_sockets(sockets)
    return server


async def serve(args: argparse.Namespace) -> None:
    data_dir = args.data_dir.resolve()
    # Before anything starts: one Ferry per data directory, and the HTTP port is ours.
    lock = DataDirLock(data_dir)
    lock.acquire()
    sockets = bind(args.address, args.port)
    metrics_sockets = bind(args.metrics_address, args.metrics_port) if args.metrics_port else []
    settings = Settings(data_dir=data_dir, address=args.address, port=args.port,
                        mongo_url=args.mongo_url, db_name=args.db_name, demo=args.demo,
                        exclusive_db=args.mongo_url is None,
                        git_allow_file_urls=args.demo or args.allow_file_urls,
                        outbound_allow_private=args.allow_private_remotes,
                        outbound_allow_cidrs=tuple(args.allow_network),
                        cookie_secret=cookie_secret(data_dir),
                        metrics_token=args.metrics_token, metrics_port=args.metrics_port,
                        metrics_address=args.metrics_address,
                        notify_allow_private=args.allow_private_notifications,
                        public_url=args.public_url,
                        instance_id=f"{socket.gethostname()}:{os.getpid()}")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with contextlib.AsyncExitStack() as stack:
        url = settings.mongo_url
        if url is None:
            database = embedded_db.for_settings(settings, keep_fds=(lock.fd,))
            url = await database.start()
            stack.push_async_callback(database.stop)
        services = Services(settings, Store(url, settings.db_name))
        await services.open()
        stack.push_async_callback(services.close)
        password = await services.auth.ensure_admin(args.admin_password)
        if args.demo:
            from services.demo import Demo
            demo = Demo(services, data_dir / "demo", hosts=args.demo_hosts)
            await demo.start()
            stack.push_async_callback(demo.stop)
        server = listen(make_app(services), settings, sockets)
        if metrics_sockets:
            listen(make_metrics_app(services), settings, metrics_sockets)
        print_banner(settings, password, args.demo)
        # Everything built so far lives as long as the process: keep it out of the garbage
        # collector's full passes, which otherwise pause fan-out for ~100 ms each.
        gc.freeze()
        await stop.wait()
        services.releases.begin_stop()
        log.info("stopping: no new requests or hosts, closing live connections")
        server.stop()
        await services.events.close_clients()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(server.close_all_connections(), 5)
        # Releases reach a safe point before anything they use (the demo fleet, the
        # database) is stopped by the exit stack.
        await services.releases.close()
    log.info("stopped")


def print_banner(settings: Settings, password: str | None, demo: bool) -> None:
    url = f"http://{settings.address}:{settings.port}/"
    lines = [f"Ferry is listening on {url}"]
    if password:
        lines.append(f"Sign in as admin with password: {password}")
    if demo:
        lines.append(f"Demo: token for the API in {settings.data_dir / 'demo' / 'token'}")
    print("\n".join(lines), flush=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s")
    # asyncssh logs every connection at INFO; a fleet deploy would drown Ferry's own lines.
    logging.getLogger("asyncssh").setLevel(max(logging.WARNING, logging.getLevelName(
        args.log_level)))
    # PyMongo's DEBUG loggers print whole commands and documents (project URLs with their
    # credentials, log batches of megabytes): never below INFO, whatever Ferry's level.
    logging.getLogger("pymongo").setLevel(max(logging.INFO, logging.getLevelName(
        args.log_level)))
    try:
        asyncio.run(serve(args))
    except (StartupError, DataDirError, EmbeddedDatabaseError) as error:
        print(f"ferry: {error}", file=sys.stderr, flush=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
