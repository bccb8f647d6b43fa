"""Ferry killed with SIGKILL mid-release: the release shows interrupted after a restart, no
host has a broken `current`, and a new release succeeds."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
import tornado.httpclient

from services.embedded_db import free_port
from tests.conftest import ROOT, Api
from tests.deploykit import deploy, register_fleet, register_project, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "crash-test-password"


async def start_server(data_dir: Path, port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "server.py", "--data-dir", str(data_dir), "--port", str(port),
         "--admin-password", PASSWORD, "--log-level", "WARNING", "--allow-file-urls"],
        cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    client = tornado.httpclient.AsyncHTTPClient()
    for _ in range(600):
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            await client.fetch(f"http://127.0.0.1:{port}/login", request_timeout=2)
            return process
        except (OSError, tornado.httpclient.HTTPClientError):
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def sign_in(port: int) -> Api:
    api = Api(f"http://127.0.0.1:{port}", None)
    status, body = await api.post("/api/session", {"name": "admin", "password": PASSWORD})
    assert status == 201, body
    api.token = body["token"]
    return api


async def kill_hard(process: subprocess.Popen) -> None:
    children = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=20)
    assert not alive, "the embedded database outlived Ferry"


def assert_current_is_whole(fleet, index: int, allowed: set[str]) -> None:
    link = fleet.host_path(index, "/srv/app/current")
    if not os.path.lexists(link):
        return
    target = os.readlink(link)
    assert target in allowed, target
    release_dir = Path(fleet.host_path(index, f"/srv/app/{target}"))
    assert (release_dir / ".ferry-release").is_file() and (release_dir / "VERSION").is_file()


async def test_sigkill_mid_release_leaves_it_interrupted_and_hosts_whole(
        tmp_path, make_fleet, app_repo):
    fleet = await make_fleet(6)
    port = free_port()
    data_dir = tmp_path / "ferry"
    server = await start_server(data_dir, port)
    try:
        api = await sign_in(port)
        await register_fleet(api, fleet)
        await register_project(api, app_repo, hooks={"before_release": "sleep 1"},
                               strategy={"parallel": 2})
        first = await deploy(api, "v1")
        await wait_for(api, first["id"], ("succeeded",))
        second = await deploy(api, "v2")
        for _ in range(200):
            _, release = await api.get(f"/api/releases/{second['id']}")
            if 1 <= release["counts"].get("ok", 0) < 6:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the design's promise: durable within about a second
        _, release = await api.get(f"/api/releases/{second['id']}")
        assert release["state"] == "running" and release["counts"]["ok"] < 6, release
        await kill_hard(server)
        allowed = {f"releases/{first['id']}", f"releases/{second['id']}"}
        for index in range(6):
            assert_current_is_whole(fleet, index, allowed)

        server = await start_server(data_dir, port)
        api = await sign_in(port)
        status, release = await api.get(f"/api/releases/{second['id']}")
        assert status == 200 and release["state"] == "interrupted", release
        assert release["reason"]
        assert any(run["state"] == "ok" for run in release["host_runs"])
        third = await deploy(api, "v3")
        done = await wait_for(api, third["id"])
        assert done["state"] == "succeeded", done
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(30)


async def test_sigterm_stops_gracefully_and_data_survives_a_restart(
        tmp_path, make_fleet, app_repo):
    fleet = await make_fleet(4)
    port = free_port()
    data_dir = tmp_path / "ferry"
    server = await start_server(data_dir, port)
    try:
        api = await sign_in(port)
        await register_fleet(api, fleet)
        await register_project(api, app_repo, hooks={"before_release": "sleep 1"},
                               strategy={"parallel": 1})
        release = await deploy(api, "v1")
        for _ in range(200):
            _, live = await api.get(f"/api/releases/{release['id']}")
            if live["counts"].get("running"):
                break
            await asyncio.sleep(0.05)
        children = psutil.Process(server.pid).children(recursive=True)
        server.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(server.wait, 30) == 0
        _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=10)
        assert not alive, "the embedded database was left running"
        for index in range(4):
            assert_current_is_whole(fleet, index, {f"releases/{release['id']}"})

        server = await start_server(data_dir, port)
        api = await sign_in(port)
        status, hosts = await api.get("/api/hosts")
        assert status == 200 and len(hosts["hosts"]) == 4
        status, stopped = await api.get(f"/api/releases/{release['id']}")
        assert stopped["state"] == "interrupted", stopped
        # The host that was running got the grace period and finished; none was started after.
        assert stopped["counts"]["ok"] == 1 and stopped["counts"]["pending"] == 3, stopped
        again = await deploy(api, "v2")
        assert (await wait_for(api, again["id"]))["state"] == "succeeded"
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(30)
