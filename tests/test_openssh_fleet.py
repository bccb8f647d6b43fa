"""Deploy, rollback and retry through the JSON API on real OpenSSH hosts (fleet/openssh.py),
as the simulator's tests do on asyncssh servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import asyncssh
import pytest

from fleet import openssh
from fleet.cpuacct import descendants
from fleet.hostexec import FleetError
from tests.conftest import ROOT
from tests.deploykit import (
    current_target,
    deploy_and_wait,
    hosts_by_name,
    read_current,
    register_fleet,
    register_project,
    wait_for,
)


@pytest.fixture
async def sshd_fleet(tmp_path: Path):
    """Three OpenSSH servers, each on its own loopback address with its own /srv."""
    async with openssh.Fleet(tmp_path / "openssh", 3) as fleet:
        yield fleet


@pytest.fixture
async def fleet(sshd_fleet, api, app_repo):
    await register_fleet(api, sshd_fleet)
    await register_project(api, app_repo, keep_releases=3,
                           health_check={"command": "test -s VERSION"})
    return sshd_fleet


async def test_a_deploy_switches_every_openssh_host_to_the_new_release(api, fleet):
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    for index in range(3):
        assert current_target(fleet, index) == f"releases/{release['id']}"
        assert read_current(fleet, index, "VERSION") == "v1\n"
    assert all(run["stages"]["verify"]["state"] == "ok" for run in release["host_runs"])


async def test_files_a_deploy_writes_belong_to_the_deploy_user(api, fleet):
    await deploy_and_wait(api, "v1")
    written = Path(fleet.host_path(0, "/srv/app/current/VERSION")).resolve()
    assert written.stat().st_uid == fleet.uid != 0


async def test_rollback_on_openssh_hosts_switches_back_with_no_upload(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    v2 = await deploy_and_wait(api, "v2")
    status, rollback = await api.post(f"/api/releases/{v2['id']}/rollback")
    assert status == 201, rollback
    done = await wait_for(api, rollback["id"])
    assert done["state"] == "succeeded", done
    for index in range(3):
        assert current_target(fleet, index) == f"releases/{v1['id']}"
        assert read_current(fleet, index, "VERSION") == "v1\n"
    for run in done["host_runs"]:
        assert run["stages"]["upload"]["state"] == "skipped"
        assert run["stages"]["extract"]["state"] == "skipped"


async def test_retry_on_openssh_hosts_deploys_only_the_failed_host(api, fleet):
    marker = Path(fleet.host_path(1, "/srv/fail-here"))
    marker.write_text("x")
    await api.put("/api/projects/app", {"hooks": {"before_release": "test ! -f /srv/fail-here"}})
    first = await deploy_and_wait(api, "v2")
    assert first["state"] == "failed"
    assert hosts_by_name(first)["host-1"]["state"] == "failed"
    assert hosts_by_name(first)["host-0"]["state"] == "ok"
    marker.unlink()
    before = [host.connections_total for host in fleet.hosts]
    status, retry = await api.post(f"/api/releases/{first['id']}/retry")
    assert status == 201, retry
    done = await wait_for(api, retry["id"])
    assert done["state"] == "succeeded" and done["hosts"] == ["host-1"], done
    assert [h.connections_total - b for h, b in zip(fleet.hosts, before, strict=True)] == [0, 1, 0]
    assert read_current(fleet, 1, "VERSION") == "v2\n"


async def test_the_fleet_counts_the_cpu_its_hosts_spend(api, fleet):
    before = fleet.cpu_ms()
    await deploy_and_wait(api, "v1")
    assert fleet.cpu_ms() > before
    assert all(host.commands > 0 for host in fleet.hosts)


async def test_log_commands_notes_every_command_a_host_ran(tmp_path):
    async with openssh.Fleet(tmp_path / "noted", 1, log_commands=True) as fleet:
        async with asyncssh.connect(
                fleet.hosts[0].address, fleet.hosts[0].port, username="deploy",
                client_keys=[str(fleet.client_key_path)],
                known_hosts=asyncssh.import_known_hosts(fleet.known_hosts_text())) as conn:
            result = await conn.run("echo one && echo two > /srv/x", check=True)
        assert result.stdout == "one\n"
        assert fleet.hosts[0].commands_run() == ["echo one && echo two > /srv/x"]
        assert fleet.host_path(0, "/srv/x").read_text() == "two\n"


async def test_stopping_the_fleet_ends_every_sshd_it_started(tmp_path):
    fleet = openssh.Fleet(tmp_path / "stopped", 2)
    await fleet.start()
    pids = fleet.pids()
    await fleet.stop()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _not_an_sshd(pid)


def _not_an_sshd(pid: int) -> bool:
    """A PID reused by another process since then."""
    try:
        return "sshd" not in Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return True


async def test_a_missing_sshd_fails_the_fleet_with_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(openssh, "SSHD", str(tmp_path / "no-sshd"))
    with pytest.raises(FleetError, match="apt-get install -y openssh-server"):
        await openssh.Fleet(tmp_path / "none", 1).start()


def test_host_cost_bench_prices_every_exec_of_ferry_and_of_the_reference():
    result = subprocess.run(
        [sys.executable, "-m", "bench.host_cost", "--artifact-mb", "0.1", "--samples", "1"],
        cwd=ROOT, capture_output=True, text=True, timeout=170)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["reference_execs"] == len(figures["reference"]) == 3
    assert figures["ferry_execs"] == len(figures["ferry"]) >= 1
    assert any("upload" in step["stage"] for step in figures["ferry"])
    assert all(step["cpu_ms"] > 0 for step in figures["ferry"] + figures["reference"])
    assert figures["connection_cpu_ms"] > 0 and figures["exec_true_cpu_ms"] > 0


async def test_without_a_cgroup_the_fleet_counts_from_proc_and_ends_open_sessions(
        tmp_path, monkeypatch):
    monkeypatch.setattr(openssh.CpuGroup, "create", classmethod(lambda cls, label: None))
    fleet = openssh.Fleet(tmp_path / "nocgroup", 1)
    await fleet.start()
    try:
        assert fleet.cgroup is None
        host = fleet.hosts[0]
        conn = await asyncssh.connect(
            host.address, host.port, username="deploy", client_keys=[str(fleet.client_key_path)],
            known_hosts=asyncssh.import_known_hosts(fleet.known_hosts_text()))
        # /proc counts in clock ticks (10 ms): the host works for several of them
        await conn.run("i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done", check=True)
        assert fleet.cpu_ms() > 0
        sessions = [pid for pid in descendants(fleet.pids()) if pid not in fleet.pids()]
        assert sessions  # the connection's own sshd processes
    finally:
        await fleet.stop()
    await conn.wait_closed()
    assert not any(os.path.exists(f"/proc/{pid}") and not _not_an_sshd(pid)
                   for pid in sessions)
