"""Ferry as a real process on the embedded database, stopped mid-release: by SIGKILL (the
release shows interrupted after a restart, no host has a broken `current`, a new release
succeeds) and by SIGTERM (a graceful stop; data survives the restart)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import psutil
import pytest
import tornado.httpclient

from services.embedded_db import free_port
from tests.conftest import ROOT, Api
from tests.deploykit import deploy, register_fleet, register_project, wait_for

pytestmark = pytest.mark.slow
PASSWORD = "crash-test-password"


class FerryProcess:
    """`server.py` in its own process (which starts its own embedded database)."""

    def __init__(self, data_dir: Path, *, cwd: Path = ROOT, env: dict | None = None) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.cwd = cwd
        self.env = env
        self.process: subprocess.Popen | None = None

    async def start(self) -> Api:
        """Start (or restart) Ferry, wait until it answers, and sign in as admin."""
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "server.py"), "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--admin-password", PASSWORD, "--log-level", "WARNING",
             "--allow-file-urls"],
            cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        base_url = f"http://127.0.0.1:{self.port}"
        client = tornado.httpclient.AsyncHTTPClient()
        for _ in range(600):
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                await client.fetch(f"{base_url}/login", request_timeout=2)
                break
            except (OSError, tornado.httpclient.HTTPClientError):
                await asyncio.sleep(0.1)
        api = Api(base_url, None)
        status, body = await api.post("/api/session", {"name": "admin", "password": PASSWORD})
        assert status == 201, body
        api.token = body["token"]
        return api

    async def stop(self, signum: signal.Signals) -> int:
        """Send `signum`; return the exit status once Ferry and its children are gone."""
        children = psutil.Process(self.process.pid).children(recursive=True)
        self.process.send_signal(signum)
        status = await asyncio.to_thread(self.process.wait, 30)
        _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=20)
        assert not alive, "the embedded database outlived Ferry"
        return status

    def cleanup(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
async def ferry(tmp_path: Path) -> AsyncIterator[FerryProcess]:
    process = FerryProcess(tmp_path / "ferry")
    yield process
    process.cleanup()


async def wait_until(api: Api, release_id: int, condition: Callable[[dict], bool]) -> dict:
    for _ in range(400):
        _, release = await api.get(f"/api/releases/{release_id}")
        if condition(release):
            return release
        await asyncio.sleep(0.05)
    raise AssertionError(f"release {release_id} never got there: {release}")


def assert_current_is_whole(fleet, index: int, allowed: set[str]) -> None:
    """`current` is absent or points at a complete release among `allowed`."""
    link = fleet.host_path(index, "/srv/app/current")
    if not os.path.lexists(link):
        return
    target = os.readlink(link)
    assert target in allowed, target
    release_dir = Path(fleet.host_path(index, f"/srv/app/{target}"))
    assert (release_dir / ".ferry-release").is_file() and (release_dir / "VERSION").is_file()


async def test_sigkill_mid_release_leaves_it_interrupted_and_hosts_whole(
        ferry, make_fleet, app_repo):
    fleet = await make_fleet(6)
    api = await ferry.start()
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": "sleep 1"},
                           strategy={"parallel": 2})
    first = await deploy(api, "v1")
    await wait_for(api, first["id"], ("succeeded",))
    second = await deploy(api, "v2")
    await wait_until(api, second["id"], lambda r: 1 <= r["counts"].get("ok", 0) < 6)
    await asyncio.sleep(0.5)  # the design's promise: durable within about a second
    live = await wait_until(api, second["id"], lambda r: True)
    assert live["state"] == "running" and live["counts"]["ok"] < 6, live
    await ferry.stop(signal.SIGKILL)
    allowed = {f"releases/{first['id']}", f"releases/{second['id']}"}
    for index in range(6):
        assert_current_is_whole(fleet, index, allowed)

    api = await ferry.start()
    status, release = await api.get(f"/api/releases/{second['id']}")
    assert status == 200 and release["state"] == "interrupted", release
    assert release["reason"]
    assert any(run["state"] == "ok" for run in release["host_runs"])
    states = Counter(run["state"] for run in release["host_runs"])
    assert {k: v for k, v in release["counts"].items() if v} == dict(states)
    _, listing = await api.get("/api/releases")
    assert listing["releases"][0]["counts"] == release["counts"]
    third = await deploy(api, "v3")
    done = await wait_for(api, third["id"])
    assert done["state"] == "succeeded", done


async def test_sigterm_stops_gracefully_and_data_survives_a_restart(
        ferry, make_fleet, app_repo):
    fleet = await make_fleet(4)
    api = await ferry.start()
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": "sleep 1"},
                           strategy={"parallel": 1})
    release = await deploy(api, "v1")
    await wait_until(api, release["id"], lambda r: r["counts"].get("running"))
    assert await ferry.stop(signal.SIGTERM) == 0
    for index in range(4):
        assert_current_is_whole(fleet, index, {f"releases/{release['id']}"})

    api = await ferry.start()
    status, hosts = await api.get("/api/hosts")
    assert status == 200 and len(hosts["hosts"]) == 4
    status, stopped = await api.get(f"/api/releases/{release['id']}")
    assert stopped["state"] == "interrupted", stopped
    # The host that was running got the grace period and finished; none was started after.
    assert stopped["counts"]["ok"] == 1 and stopped["counts"]["pending"] == 3, stopped
    again = await deploy(api, "v2")
    assert (await wait_for(api, again["id"]))["state"] == "succeeded"
