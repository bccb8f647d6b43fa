"""Faults on one host fail only that host, with a clear reason; the others succeed."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.deploykit import (
    deploy_and_wait,
    hosts_by_name,
    register_fleet,
    register_project,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(make_fleet, api, app_repo):
    fleet = await make_fleet(3)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


def outcome(release: dict) -> dict[str, str]:
    return {name: run["state"] for name, run in hosts_by_name(release).items()}


async def test_nothing_listening_fails_that_host_only(api, fleet):
    await fleet.stop_host(1) if asyncio.iscoroutinefunction(fleet.stop_host) else (
        fleet.stop_host(1))
    release = await deploy_and_wait(api, "v1")
    assert outcome(release) == {"host-0": "ok", "host-1": "failed", "host-2": "ok"}
    assert "refused" in hosts_by_name(release)["host-1"]["reason"]


async def test_refused_authentication_fails_that_host_only(api, fleet):
    fleet.hosts[2].refuse_auth = True
    release = await deploy_and_wait(api, "v1")
    assert outcome(release) == {"host-0": "ok", "host-1": "ok", "host-2": "failed"}
    assert "authentication failed" in hosts_by_name(release)["host-2"]["reason"]


async def test_a_changed_host_key_fails_that_host_only(api, fleet):
    await fleet.rotate_host_key(0)
    release = await deploy_and_wait(api, "v1")
    assert outcome(release) == {"host-0": "failed", "host-1": "ok", "host-2": "ok"}
    assert "changed" in hosts_by_name(release)["host-0"]["reason"]


async def test_an_unknown_host_key_fails_that_host_only(api, make_fleet, fleet):
    other = await make_fleet(1, name_prefix="stranger", first_address=(9, 1))
    status, _ = await api.post("/api/hosts", {
        "name": "stranger-0", "address": other.hosts[0].address, "port": other.hosts[0].port,
        "user": "deploy", "key_path": str(other.client_key_path), "groups": ["web"]})
    assert status == 201
    release = await deploy_and_wait(api, "v1")
    runs = hosts_by_name(release)
    assert runs["stranger-0"]["state"] == "failed"
    assert "not known" in runs["stranger-0"]["reason"]
    assert [runs[f"host-{i}"]["state"] for i in range(3)] == ["ok", "ok", "ok"]


@pytest.mark.parametrize("settings_overrides", [{"hook_timeout_s": 2.0}])
async def test_a_command_hanging_past_its_timeout_fails_that_host_only(api, fleet):
    await api.put("/api/projects/app", {"hooks": {
        "before_release": '[ "$FERRY_HOST" != host-1 ] || sleep 600'}})
    release = await deploy_and_wait(api, "v1")
    assert outcome(release) == {"host-0": "ok", "host-1": "failed", "host-2": "ok"}
    assert "timed out" in hosts_by_name(release)["host-1"]["reason"]


@pytest.mark.parametrize("settings_overrides", [
    {"hook_timeout_s": 3.0, "ssh_step_output_max_bytes": 64 * 1024}])
async def test_endless_hook_output_is_capped_not_buffered(api, fleet):
    await api.put("/api/projects/app", {"hooks": {
        "before_release": '[ "$FERRY_HOST" != host-0 ] || yes "endless output"'}})
    release = await deploy_and_wait(api, "v1")
    assert outcome(release) == {"host-0": "failed", "host-1": "ok", "host-2": "ok"}
    assert "timed out" in hosts_by_name(release)["host-0"]["reason"]
    _, log = await api.get(f"/api/releases/{release['id']}/hosts/host-0/log")
    hook_lines = [line["line"] for line in log["lines"] if line["stage"] == "before_release"]
    assert sum(len(line) + 1 for line in hook_lines) < 80 * 1024
    assert any("truncated" in line for line in hook_lines)


@pytest.mark.parametrize("settings_overrides", [{"git_timeout_s": 3.0}])
async def test_a_git_remote_that_never_answers_fails_the_release_not_the_request(api, fleet):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        status, body = await api.post("/api/projects", {
            "name": "silent", "repo_url": f"ssh://git@127.0.0.1:{port}/repo.git",
            "deploy_path": "/srv/silent", "groups": ["web"]})
        assert status == 201, body
        status, started = await api.post("/api/releases", {"project": "silent",
                                                           "ref": "main"})
        # Answered while git is still waiting on the silent remote.
        assert status == 201, started
        _, now = await api.get(f"/api/releases/{started['id']}")
        assert now["state"] in ("pending", "running"), now
        release = await wait_for(api, started["id"])
    finally:
        listener.close()
    assert release["state"] == "failed", release
    assert release["reason"].startswith("git: "), release["reason"]
    assert {run["state"] for run in release["host_runs"]} == {"skipped"}


async def test_each_host_lists_its_own_result_in_the_last_release_that_ran_on_it(api, fleet):
    first = await deploy_and_wait(api, "v1")
    await api.put("/api/projects/app", {"hooks": {
        "before_release": '[ "$FERRY_HOST" != host-1 ] || exit 1'}})
    second = await deploy_and_wait(api, "v2", strategy={"parallel": 1, "max_fail": 0})
    assert outcome(second) == {"host-0": "ok", "host-1": "failed", "host-2": "skipped"}
    expected = {"host-0": (second["id"], "ok"), "host-1": (second["id"], "failed"),
                "host-2": (first["id"], "ok")}  # never reached by the second: keeps the first
    for _ in range(100):  # written as the release ends, just after its final state
        _, listing = await api.get("/api/hosts")
        last = {host["name"]: (host["last_release"]["id"], host["last_release"]["state"])
                for host in listing["hosts"]}
        if last == expected:
            break
        await asyncio.sleep(0.1)
    assert last == expected, listing
