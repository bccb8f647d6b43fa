"""Shutdown is honest: a signal mid-release stops scheduling at once, running hosts get the
grace period, whatever is cut off ends `interrupted` (never `failed` because Ferry stopped),
and a `--demo` fleet outlives the releases that use it but not Ferry, even after SIGKILL."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path

import psutil
import pytest

from tests.conftest import Api
from tests.deploykit import deploy, register_fleet, register_project
from tests.ferryproc import Ferry
from tests.pids import command_line

pytestmark = pytest.mark.slow
@pytest.fixture
async def ferries(tmp_path: Path):
    started: list[Ferry] = []

    def make(*extra: str) -> Ferry:
        ferry = Ferry(tmp_path / "ferry", *extra)
        started.append(ferry)
        return ferry

    yield make
    for ferry in started:
        ferry.cleanup()


async def wait_running(api: Api, release_id: int, at_least: int = 1) -> None:
    for _ in range(600):
        _, release = await api.get(f"/api/releases/{release_id}")
        if release["counts"].get("running", 0) >= at_least:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"release {release_id} never had {at_least} running hosts")


def assert_cut_off_honestly(release: dict, signalled_at: datetime) -> None:
    assert release["state"] == "interrupted", release
    states = {run["host"]: run["state"] for run in release["host_runs"]}
    assert "failed" not in states.values(), states
    for run in release["host_runs"]:
        started = run.get("started_at")
        if started:
            started = datetime.fromisoformat(started.replace("Z", "+00:00"))
            assert started <= signalled_at, f"{run['host']} started after the signal"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_mid_release_interrupts_it_without_failing_or_starting_hosts(
        ferries, make_fleet, app_repo, signum):
    fleet = await make_fleet(6)
    ferry = ferries()
    api = await ferry.start()
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": "sleep 30"},
                           strategy={"parallel": 2})
    release = await deploy(api, "v1")
    await wait_running(api, release["id"], 2)
    signalled_at = datetime.now(UTC)
    assert await ferry.signal_group(signum) == 0

    api = await ferry.start()
    _, stopped = await api.get(f"/api/releases/{release['id']}")
    assert_cut_off_honestly(stopped, signalled_at)
    states = [run["state"] for run in stopped["host_runs"]]
    assert states.count("interrupted") == 2 and states.count("pending") == 4, states


async def test_ctrl_c_of_a_demo_server_keeps_the_fleet_up_until_releases_are_safe(ferries):
    ferry = ferries("--demo", "--demo-hosts", "4")
    api = await ferry.start()
    status, _ = await api.put("/api/projects/demo-app", {
        "hooks": {"before_release": "sleep 30"}, "strategy": {"batches": ["100%"],
                                                               "parallel": 2}})
    assert status == 200
    status, release = await api.post("/api/releases", {"project": "demo-app",
                                                       "ref": "v1.1.0"})
    assert status == 201, release
    await wait_running(api, release["id"], 2)
    signalled_at = datetime.now(UTC)
    fleet = [p for p in ferry.descendants() if "fleet" in command_line(p)]
    assert fleet, "the demo fleet runs as a child of Ferry"
    assert await ferry.signal_group(signal.SIGINT) == 0
    _, alive = await asyncio.to_thread(psutil.wait_procs, fleet, timeout=20)
    assert not alive, "the demo fleet outlived Ferry"

    api = await ferry.start()
    _, stopped = await api.get(f"/api/releases/{release['id']}")
    assert_cut_off_honestly(stopped, signalled_at)


async def test_sigkill_of_a_demo_server_leaves_no_fleet_process(ferries):
    ferry = ferries("--demo", "--demo-hosts", "3")
    await ferry.start()
    children = ferry.descendants()
    assert any("fleet" in command_line(p) for p in children)
    ferry.process.kill()
    await asyncio.to_thread(ferry.process.wait, 30)
    _, alive = await asyncio.to_thread(psutil.wait_procs, children, timeout=30)
    assert not alive, [(p.pid, command_line(p)) for p in alive]

