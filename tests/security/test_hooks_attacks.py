"""Attacks through hooks and what surrounds them, on a real fleet through the real server:
shell-startup variables, processes a hook leaves running (on the hosts and on the Ferry
server), a symlinked release marker and a tampered cached artifact."""

from __future__ import annotations

import asyncio
import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from tests.deploykit import (
    deploy_and_wait,
    hosts_by_name,
    register_fleet,
    register_project,
)
from tests.pids import pid_gone

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def set_hooks(api, **hooks: str) -> None:
    status, body = await api.put("/api/projects/app", {"hooks": hooks})
    assert status == 200, body


async def host_log(api, release: dict, host: str = "host-0") -> list[str]:
    status, page = await api.get(f"/api/releases/{release['id']}/hosts/{host}/log?limit=5000")
    assert status == 200, page
    return [line["line"] for line in page["lines"]]



# -- the hook's environment --------------------------------------------------------------

@pytest.mark.parametrize("name, value", [
    ("SHELLOPTS", "xtrace"), ("BASHOPTS", "extdebug"), ("BASH_ENV", "{startup}"),
    ("ENV", "{startup}"), ("PS4", "$(touch {pwned})"),
])
async def test_shell_startup_variables_are_refused_and_have_no_effect_even_if_stored(
        api, services, fleet, tmp_path, name, value):
    pwned = tmp_path / "pwned"
    startup = tmp_path / "startup.sh"
    startup.write_text(f"touch {pwned}\n")
    value = value.format(startup=startup, pwned=pwned)
    status, body = await api.put("/api/hosts/host-0", {"variables": {name: value}})
    assert status == 400, body
    # As if stored before these rules: the hook still runs without it.
    await services.store.hosts.update_one({"name": "host-0"},
                                          {"$set": {"variables": {name: value, "APP": "1"}}})
    await set_hooks(api, before_release='echo "app=$APP"; set -x; true')
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    log = await host_log(api, release)
    assert "app=1" in log
    assert any("left out" in line and repr(name) in line for line in log)
    assert not pwned.exists()
    assert not [line for line in log if "extdebug" in line or line.startswith("+ echo")]


async def test_a_hook_sees_only_ferrys_values_host_variables_and_a_fixed_path(
        api, services, fleet):
    await api.put("/api/hosts/host-0", {"variables": {"APP_ENV": "prod"}})
    await set_hooks(api, before_release='env | sort | cut -d= -f1 | tr "\\n" " "; echo')
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    names = set(next(line for line in await host_log(api, release)
                     if "FERRY_STAGE" in line).split())
    assert "FLEET_HOST" not in names and "SHELL" not in names  # the SSH session's own
    assert {"APP_ENV", "PATH", "HOME", "FERRY_STAGE", "FERRY_RELEASE_ID"} <= names


# -- processes a hook leaves behind ----------------------------------------------------

async def test_a_nohup_child_of_a_host_hook_is_killed_when_the_hook_ends(api, fleet, tmp_path):
    pid_file = tmp_path / "host-child.pid"
    await set_hooks(api, after_release=f'[ "$FERRY_HOST" = host-0 ] || exit 0; '
                                       f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}")
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_nohup_child_of_a_local_hook_is_killed_when_the_hook_ends(
        api, fleet, tmp_path):
    pid_file = tmp_path / "local-child.pid"
    await set_hooks(api, after_checkout=f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}")
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_child_holding_a_local_hooks_output_does_not_hold_the_release(
        api, fleet, tmp_path):
    pid_file = tmp_path / "holder.pid"
    await set_hooks(api, before_checkout=f"sleep 300 & echo $! > {pid_file}; echo built")
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    assert await pid_gone(int(pid_file.read_text()))


async def test_cancelling_a_release_kills_the_running_hooks_children(api, fleet, tmp_path):
    pid_file = tmp_path / "cancelled-child.pid"
    await set_hooks(api, before_release=f'[ "$FERRY_HOST" = host-0 ] || exit 0; '
                                        f"sleep 300 & echo $! > {pid_file}; wait")
    status, release = await api.post("/api/releases", {"project": "app", "ref": "v1"})
    assert status == 201
    for _ in range(400):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        await asyncio.sleep(0.05)
    status, _ = await api.post(f"/api/releases/{release['id']}/cancel")
    assert status in (200, 202)
    assert await pid_gone(int(pid_file.read_text()))


# -- what the release tree could hold ----------------------------------------------------

async def test_a_committed_marker_symlink_never_writes_outside_the_release(
        api, fleet, app_repo, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (app_repo.path / ".ferry-release").symlink_to(victim / "marker")
    app_repo.commit_version("v4")
    release = await deploy_and_wait(api, "v4")
    assert list(victim.iterdir()) == []
    if release["state"] == "succeeded":
        marker = Path(fleet.host_path(0, f"/srv/app/releases/{release['id']}/.ferry-release"))
        assert not marker.is_symlink() and marker.read_text().startswith(
            f"release={release['id']} ")


async def test_a_tampered_cached_artifact_is_refused_by_every_host(
        api, services, fleet, app_repo, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    project = await services.projects.get("app")
    key = services.artifacts.key(project, app_repo.shas["v1"])
    cache = services.settings.artifacts_dir / "app" / f"{key}.tar.gz"
    cache.parent.mkdir(parents=True, exist_ok=True)
    data = _tarball_with_a_link_then_a_file_below_it(str(victim))
    cache.write_bytes(data)
    cache.with_name(cache.name + ".sha256").write_text(
        f"{hashlib.sha256(data).hexdigest()}  {cache.name}\n")
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "failed"
    for run in hosts_by_name(release).values():
        assert run["state"] == "failed"
        assert run["reason"] == ("extract: the artifact was refused: tar reported the "
                                 "problems above; nothing was extracted")
    assert list(victim.iterdir()) == []
    assert "tar: a/evil: Cannot open: Not a directory" in await host_log(api, release)


def _tarball_with_a_link_then_a_file_below_it(outside: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        link = tarfile.TarInfo("a")
        link.type, link.linkname = tarfile.SYMTYPE, outside
        tar.addfile(link)
        evil = tarfile.TarInfo("a/evil")
        evil.size = 5
        tar.addfile(evil, io.BytesIO(b"pwned"))
    return buf.getvalue()
