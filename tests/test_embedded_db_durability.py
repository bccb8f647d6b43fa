"""Every write Ferry's store had acknowledged survives a SIGKILL of the embedded database:
release state changes, host runs, batches of log lines and wall events, written through
Ferry's own code (tests/embedded_db_writer.py, in its own process, which SIGKILLs the
database the moment its last write is acknowledged); a restart on the same data
directory finds them all, and marks the release that was running interrupted with each
host's last state."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections import Counter

import psutil
import pytest

from services import Services, embedded_db
from tests.conftest import ROOT
from tests.embedded_db_writer import HOSTS, LINES, RUNNING, ferry_settings, open_services

pytestmark = pytest.mark.slow


async def write_then_kill_the_database(data_dir) -> dict:
    """Run the writer until its database is killed after the last acknowledgement."""
    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.embedded_db_writer", str(data_dir), cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE)
    try:
        line = await writer.stdout.readline()
        assert line, f"the writer exited with {await writer.wait()}"
        acknowledged = json.loads(line)
        with contextlib.suppress(psutil.NoSuchProcess):
            database = psutil.Process(acknowledged["db_pid"])
            database.send_signal(signal.SIGKILL)
            await asyncio.to_thread(database.wait, 30)
    finally:
        if writer.returncode is None:
            writer.kill()
        await writer.wait()
    return acknowledged


async def stored_lines(services: Services, release_id: int) -> Counter[str]:
    lines: Counter[str] = Counter()
    async for chunk in services.store.host_logs.find({"release_id": release_id}):
        lines[chunk["host"]] += len(chunk["lines"])
    return lines


async def test_every_acknowledged_write_survives_a_sigkill_of_the_database(tmp_path):
    settings = ferry_settings(tmp_path / "ferry")
    acknowledged = await write_then_kill_the_database(settings.data_dir)

    database = embedded_db.for_settings(settings)
    services = await open_services(settings, await database.start())
    try:
        for release_id in range(1, RUNNING.start):
            release = await services.store.releases.find_one({"_id": release_id})
            assert release["state"] == "succeeded", release
            assert release["counts"]["ok"] == len(HOSTS), release
            assert await stored_lines(services, release_id) == {host: LINES for host in HOSTS}
        for release_id in RUNNING:
            interrupted = await services.store.releases.find_one({"_id": release_id})
            assert interrupted["state"] == "interrupted"
            states = {run["host"]: run["state"] async for run in
                      services.store.host_runs.find({"release_id": release_id})}
            assert states == {HOSTS[0]: "ok", HOSTS[1]: "ok", HOSTS[2]: "interrupted",
                              HOSTS[3]: "interrupted"}, release_id
            assert await stored_lines(services, release_id) == {host: LINES for host in HOSTS}
        wall_head = acknowledged["wall_head"]
        wall = await services.events.read("wall", wall_head - 1, 10)
        assert wall and wall[0]["seq"] == wall_head
    finally:
        await services.close()
        await database.stop()
