"""Attacks through a project's deploy path: strings that name a system directory or
smuggle shell text are refused (400); a deploy path that is a symlink on a host is
resolved there and refused with the reason, and nothing is created where it points."""

from __future__ import annotations

import os

import pytest

from services.errors import Invalid
from services.registry import validation as check
from tests.deploykit import (
    deploy_and_wait,
    hosts_by_name,
    register_fleet,
    register_project,
    wait_for,
)

pytestmark = pytest.mark.slow

HOSTILE_PATHS = [
    ("/", "the root directory"),
    ("/etc", "a system directory"),
    ("/etc\n", "a system directory with a trailing newline"),
    ("/etc/nginx", "inside a system tree"),
    ("/srv/../etc", "'..' climbing into a system directory"),
    ("/srv/app/../../usr/lib/x", "'..' climbing into a system tree"),
    ("//etc", "a doubled leading slash"),
    ("..", "a bare '..'"),
    ("srv/app", "a relative path"),
    ("~/app", "a home-relative path"),
    ("", "an empty path"),
    ("/srv/app\x00/x", "a NUL byte"),
    ("/srv/app\n/x", "a newline"),
    ("/srv/app;rm -rf /", "a shell command"),
    ("/srv/$(id)", "command substitution"),
    ("/srv/`id`", "backquotes"),
    ("/srv/a b", "a space"),
    ("/srv/" + "a" * 300, "an overlong path"),
    ("/proc/self/cwd", "the proc filesystem"),
    (5, "a number"),
    (None, "nothing"),
]


@pytest.mark.parametrize("path, attack", HOSTILE_PATHS, ids=[case[1] for case in HOSTILE_PATHS])
def test_a_hostile_deploy_path_is_refused_by_the_one_validator(path, attack):
    with pytest.raises(Invalid):
        check.deploy_path(path)


@pytest.mark.parametrize("path, attack", HOSTILE_PATHS[:3] + HOSTILE_PATHS[11:15],
                         ids=[case[1] for case in HOSTILE_PATHS[:3] + HOSTILE_PATHS[11:15]])
async def test_a_hostile_deploy_path_gets_a_400(api, app_repo, path, attack):
    status, body = await api.post("/api/projects", {
        "name": "app", "repo_url": app_repo.url, "deploy_path": path})
    assert status == 400, (attack, body)
    status, _ = await api.get("/api/projects/app")
    assert status == 404


@pytest.fixture
async def fleet(api, make_fleet, app_repo, tmp_path):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


def outside(tmp_path):
    """A directory outside every host's /srv (the hosts see the real filesystem there)."""
    path = tmp_path / "outside"
    path.mkdir(exist_ok=True)
    return path


async def test_a_deploy_path_symlinked_on_one_host_fails_that_host_and_writes_nothing_there(
        api, fleet, tmp_path):
    target = outside(tmp_path)
    fleet.host_path(0, "/srv").mkdir(parents=True, exist_ok=True)
    os.symlink(target, fleet.host_path(0, "/srv/app"))
    release = await deploy_and_wait(api, "v1")
    runs = hosts_by_name(release)
    assert runs["host-0"]["state"] == "failed"
    assert runs["host-0"]["reason"] == (
        f"upload: deploy path /srv/app resolves to {target}; refusing")
    assert runs["host-1"]["state"] == "ok"
    assert list(target.iterdir()) == []


async def test_a_deploy_path_below_a_symlinked_directory_is_refused(api, fleet, tmp_path):
    target = outside(tmp_path)
    status, _ = await api.put("/api/projects/app", {"deploy_path": "/srv/apps/shop"})
    assert status == 200
    fleet.host_path(1, "/srv").mkdir(parents=True, exist_ok=True)
    os.symlink(target, fleet.host_path(1, "/srv/apps"))
    release = await deploy_and_wait(api, "v1")
    runs = hosts_by_name(release)
    assert runs["host-1"]["state"] == "failed"
    assert runs["host-1"]["reason"] == (
        f"upload: deploy path /srv/apps/shop resolves to {target}/shop; refusing")
    assert list(target.iterdir()) == []
    assert runs["host-0"]["state"] == "ok"


async def test_a_rollback_refuses_a_deploy_path_turned_into_a_symlink_since(
        api, fleet, tmp_path):
    first = await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v2")
    assert first["state"] == second["state"] == "succeeded"
    real = fleet.host_path(0, "/srv/app")
    moved = outside(tmp_path) / "app"
    os.rename(real, moved)
    os.symlink(moved, real)
    status, rollback = await api.post(f"/api/releases/{second['id']}/rollback")
    assert status == 201, rollback
    done = await wait_for(api, rollback["id"])
    runs = hosts_by_name(done)
    assert runs["host-0"]["state"] == "failed"
    assert runs["host-0"]["reason"] == (
        f"release: deploy path /srv/app resolves to {moved}; refusing")
    assert os.readlink(moved / "current") == f"releases/{second['id']}"
    assert runs["host-1"]["state"] == "ok"


async def test_the_host_side_checks_cost_no_extra_ssh_exec_request(api, fleet):
    """A standard deploy (no hooks, no health check, artifact not yet on the host) is
    check/prepare, upload, extract, switch, prune: 5 exec requests per host at most."""
    before = [host.commands for host in fleet.hosts]
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    assert all(host.commands - b <= 5 for host, b in zip(fleet.hosts, before, strict=True))
