"""The simulated fleet itself: addresses, the CLI and its manifest."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import asyncssh
import pytest

from fleet.base import host_address
from fleet.simulator import Fleet

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parent.parent


def test_host_addresses_wrap_after_250():
    assert [host_address(i) for i in (0, 1, 249, 250, 251)] == [
        "127.0.1.1", "127.0.1.2", "127.0.1.250", "127.0.2.1", "127.0.2.2"]
    assert host_address(0, (3, 250)) == "127.0.3.250"
    assert host_address(1, (3, 250)) == "127.0.4.1"


def test_host_path_maps_only_srv(tmp_path):
    fleet = Fleet(tmp_path, 2)
    assert fleet.host_path(1, "/srv/app/current") == tmp_path / "host-1" / "srv/app/current"
    with pytest.raises(ValueError):
        fleet.host_path(0, "/etc/passwd")
    with pytest.raises(ValueError):
        fleet.host_path(0, "/srv/../etc/passwd")


@pytest.mark.asyncio
async def test_cli_writes_the_manifest_then_stops_on_sigterm(tmp_path):
    manifest = tmp_path / "fleet.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "fleet", "--hosts", "3", "--root", str(tmp_path / "f"),
        "--manifest", str(manifest), cwd=REPO, stdout=asyncio.subprocess.PIPE)
    try:
        assert await asyncio.wait_for(proc.stdout.readline(), 60) == b"fleet ready\n"
        data = json.loads(manifest.read_text())
        assert data["user"] == "deploy"
        assert os.stat(data["client_key"]).st_mode & 0o777 == 0o600
        hosts = data["hosts"]
        assert [h["address"] for h in hosts] == ["127.0.1.1", "127.0.1.2", "127.0.1.3"]
        assert all(h["port"] > 0 and h["fingerprint"].startswith("SHA256:") for h in hosts)
        assert len({h["public_key"] for h in hosts}) == 3
        reader, writer = await asyncio.open_connection(hosts[2]["address"], hosts[2]["port"])
        assert (await reader.readline()).startswith(b"SSH-2.0-")
        writer.close()
        await writer.wait_closed()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0


@pytest.mark.asyncio
async def test_a_host_command_runs_in_a_process_group_of_its_own_within_the_fleets_session(
        tmp_path):
    # Its own group: a cancelled command is killed whole. The fleet's session: with
    # autogroup scheduling a session of its own would escape the fleet's CPU priority.
    async with Fleet(tmp_path / "fleet", 1) as fleet:
        doc = fleet.host_document(0)
        async with asyncssh.connect(doc["address"], doc["port"], username=doc["user"],
                                    known_hosts=None, client_keys=[doc["key_path"]]) as conn:
            result = await conn.run('s=$(cat /proc/$$/stat); set -- ${s##*) }; echo $$ $3 $4',
                                    check=True)
    pid, group, session = (int(word) for word in result.stdout.split())
    assert group == pid
    assert session == os.getsid(0)
