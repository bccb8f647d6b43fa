"""Attacks through a host's key_path, a file the Ferry server reads: a FIFO nobody writes
to, a device, a symlink. The host fails with the reason; the server keeps answering."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.deploykit import deploy, hosts_by_name, register_fleet, register_project, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_a_fifo_key_path_fails_the_host_and_the_server_keeps_answering(
        api, fleet, tmp_path):
    fifo = tmp_path / "key.fifo"
    os.mkfifo(fifo)  # nobody ever writes: a blocking read of it would never return
    status, body = await api.put("/api/hosts/host-0", {"key_path": str(fifo)})
    assert status == 200, body
    release = await deploy(api, "v1")
    answers = await asyncio.gather(*(api.get("/api/me") for _ in range(5)))
    assert [status for status, _ in answers] == [200] * 5
    done = await wait_for(api, release["id"])
    runs = hosts_by_name(done)
    assert runs["host-0"]["state"] == "failed"
    assert runs["host-0"]["reason"] == f"client key {fifo} is not a regular file"
    assert runs["host-1"]["state"] == "ok"


@pytest.mark.parametrize("attack, make, reason", [
    ("a character device that never ends", lambda tmp: "/dev/zero", "is not a regular file"),
    ("a symlink to the real key", lambda tmp: _link(tmp), "is a symbolic link"),
    ("a directory", lambda tmp: str(tmp), "is not a regular file"),
    ("a missing file", lambda tmp: str(tmp / "missing"), "No such file or directory"),
])
async def test_a_key_path_that_is_no_key_file_fails_the_host_with_the_reason(
        api, fleet, tmp_path, attack, make, reason):
    path = make(tmp_path)
    if "symlink" in attack:
        os.symlink(fleet.client_key_path, path)
    status, body = await api.put("/api/hosts/host-0", {"key_path": path})
    assert status == 200, body
    done = await wait_for(api, (await deploy(api, "v1"))["id"])
    run = hosts_by_name(done)["host-0"]
    assert run["state"] == "failed" and reason in run["reason"], (attack, run)
    assert hosts_by_name(done)["host-1"]["state"] == "ok"


def _link(tmp_path) -> str:
    return str(tmp_path / "key-link")
