"""A database that stops answering mid-release: the release waits (back-pressure) instead
of growing Ferry's memory, and once the database is back no log line is missing."""

from __future__ import annotations

import asyncio
import signal

import psutil
import pytest

from tests.deploykit import deploy, register_fleet, register_project, wait_for
from tests.ferryproc import Ferry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
HOSTS = 50
LINES = 2000     # per host, printed by its before_release hook


async def read_whole_log(api, release_id: int, host: str) -> list[dict]:
    lines, after = [], 0
    while True:
        status, page = await api.get(f"/api/releases/{release_id}/hosts/{host}/log"
                                     f"?after={after}")
        assert status == 200, page
        lines += page["lines"]
        after = page["next"]
        if not page["more"]:
            return lines


async def test_a_stalled_database_slows_the_release_and_loses_no_log_line(tmp_path,
                                                                          make_fleet,
                                                                          app_repo):
    fleet = await make_fleet(HOSTS)
    ferry = Ferry(tmp_path / "ferry")
    try:
        api = await ferry.start()
        await register_fleet(api, fleet)
        await register_project(api, app_repo, strategy={"parallel": 10},
                               hooks={"before_release": f"seq 1 {LINES}"})
        server = psutil.Process(ferry.process.pid)
        database = ferry.database()
        release = await deploy(api, "v1")
        for _ in range(600):
            _, live = await api.get(f"/api/releases/{release['id']}")
            if live["counts"].get("ok", 0) >= 5:
                break
            await asyncio.sleep(0.05)
        before = server.memory_info().rss
        database.send_signal(signal.SIGSTOP)
        try:
            peak = before
            for _ in range(100):                 # 10 s without a database
                peak = max(peak, server.memory_info().rss)
                await asyncio.sleep(0.1)
        finally:
            database.send_signal(signal.SIGCONT)
        done = await wait_for(api, release["id"], timeout=240)
        assert done["state"] == "succeeded", done
        assert not done.get("log_lines_lost"), done
        # 50 hosts of 2,000 lines is 100,000 lines; the back-pressure holds about 20,000.
        assert peak - before < 80 * 1024 * 1024, (before, peak)
        for host in (run["host"] for run in done["host_runs"]):
            lines = await read_whole_log(api, release["id"], host)
            numbers = [line["n"] for line in lines]
            assert numbers == list(range(1, len(numbers) + 1)), host
            hook = [line["line"] for line in lines if line["stage"] == "before_release"]
            assert hook[-LINES:] == [str(n) for n in range(1, LINES + 1)], host
    finally:
        ferry.cleanup()
