"""Shared fixtures: one embedded database per session, a database per test, Services,
a real HTTP server, an API client with an admin token, git repositories and fleets."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pymongo
import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil

from server import make_app
from services import Services
from services.embedded_db import database_url, free_port
from services.settings import Settings
from services.store import Store

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def mongo_url() -> str:
    """The embedded database, started once for the whole test session."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "secantus", "--host", "127.0.0.1", "--port", str(port),
         "--storage-path", ":memory:", "--log-level", "WARNING"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = database_url(port)
    client = pymongo.MongoClient(url, serverSelectionTimeoutMS=500)
    deadline = time.monotonic() + 60
    while True:
        try:
            client.admin.command("ping")
            break
        except pymongo.errors.PyMongoError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("embedded database did not start") from None
            time.sleep(0.1)
    client.close()
    yield url
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def settings_overrides() -> dict:
    """Override in a test with @pytest.mark.parametrize("settings_overrides", [{...}])."""
    return {}


@pytest.fixture
def settings(tmp_path: Path, mongo_url: str, settings_overrides: dict) -> Settings:
    """Settings for one test: its own data dir and database, short timeouts."""
    return make_settings(tmp_path, mongo_url).replace(**settings_overrides)


def make_settings(tmp_path: Path, mongo_url: str) -> Settings:
    """The tests' settings (also for servers a module shares between its tests)."""
    return Settings(
        data_dir=tmp_path / "data", mongo_url=mongo_url,
        db_name=f"t_{uuid.uuid4().hex[:12]}", cookie_secret="test-secret",
        # The tests' repositories are local and their remotes on loopback: allowed here
        # explicitly (both are off by default).
        git_allow_file_urls=True, outbound_allow_private=True,
        git_timeout_s=30, ssh_connect_timeout_s=5,
        ssh_login_timeout_s=5, ssh_command_timeout_s=30, hook_timeout_s=30,
        verify_retries=2, verify_interval_s=0.2, lease_ttl_s=10, lease_renew_s=2,
        instance_id=f"test-{uuid.uuid4().hex[:6]}", shutdown_grace_s=3,
        exclusive_db=True)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    """Services opened on the test's own database; dropped afterwards."""
    store = Store(settings.mongo_url, settings.db_name)
    services = Services(settings, store)
    await services.open()
    try:
        yield services
    finally:
        await services.close()
        cleanup = pymongo.AsyncMongoClient(settings.mongo_url)
        await cleanup.drop_database(settings.db_name)
        await cleanup.close()


@pytest.fixture
async def base_url(services: Services) -> AsyncIterator[str]:
    """A real HTTP server for the app, on a free loopback port."""
    app = make_app(services)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app, max_body_size=services.settings.max_body_bytes)
    server.add_sockets(sockets)
    port = sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.stop()
    await services.events.close_clients()
    await server.close_all_connections()


class Api:
    """A JSON client with a bearer token; every response must be JSON, never a traceback."""

    def __init__(self, base_url: str, token: str | None) -> None:
        self.base_url = base_url
        self.token = token
        self.client = tornado.httpclient.AsyncHTTPClient()

    async def request(self, method: str, path: str, body: Any = None, *,
                      raw: bytes | None = None, headers: dict | None = None) -> tuple[int, Any]:
        all_headers = {"Content-Type": "application/json"}
        if self.token:
            all_headers["Authorization"] = f"Bearer {self.token}"
        all_headers.update(headers or {})
        payload = raw if raw is not None else (
            json.dumps(body).encode() if body is not None else None)
        if payload is None and method in ("POST", "PUT", "PATCH"):
            payload = b""
        response = await self.client.fetch(
            self.base_url + path, method=method, body=payload, headers=all_headers,
            raise_error=False, request_timeout=120)
        text = response.body.decode() if response.body else ""
        assert "Traceback" not in text, text
        data = json.loads(text) if text else None
        if response.code >= 400:
            assert set(data) >= {"message", "reason"}, data
        return response.code, data

    async def get(self, path: str, **kw) -> tuple[int, Any]:
        return await self.request("GET", path, **kw)

    async def post(self, path: str, body: Any = None, **kw) -> tuple[int, Any]:
        return await self.request("POST", path, body, **kw)

    async def put(self, path: str, body: Any = None, **kw) -> tuple[int, Any]:
        return await self.request("PUT", path, body, **kw)

    async def delete(self, path: str, **kw) -> tuple[int, Any]:
        return await self.request("DELETE", path, **kw)


@pytest.fixture
async def admin_token(services: Services) -> str:
    await services.auth.ensure_admin("admin-password")
    user = await services.auth.check_password("admin", "admin-password")
    return await services.auth.create_token(user, "tests")


@pytest.fixture
async def api(base_url: str, admin_token: str) -> Api:
    """The HTTP API as the admin user."""
    return Api(base_url, admin_token)


@pytest.fixture
def anonymous_api(base_url: str) -> Api:
    return Api(base_url, None)


@pytest.fixture
async def make_fleet(tmp_path: Path):
    """A factory of simulated fleets of real SSH servers, stopped after the test."""
    from fleet.simulator import Fleet

    fleets = []

    async def make(count: int = 3, **kwargs: Any):
        fleet = Fleet(tmp_path / f"fleet{len(fleets)}", count, **kwargs)
        await fleet.__aenter__()
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in reversed(fleets):
        await fleet.__aexit__(None, None, None)


@pytest.fixture
def app_repo(tmp_path: Path):
    """A git repository with tagged versions v1, v2, v3 on branch main."""
    from tests.deploykit import make_app_repo

    return make_app_repo(tmp_path / "app-src")
