"""Hostile repositories released through the real API to a real SSH host: the release
fails at checkout with the reason named, and nothing lands outside the tree, on Ferry's
server or on the host."""

from __future__ import annotations

import pytest

from services.demo import PROJECT as DEMO_PROJECT
from tests.deploykit import register_fleet, wait_for
from tests.security.repokit import FILE, SYMLINK, blob_of_zeros, hostile_repo, tree

MiB = 1024 * 1024


async def release(api, make_fleet, repo, **project) -> dict:
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    status, body = await api.post("/api/projects", {
        "name": "app", "repo_url": repo.url, "deploy_path": "/srv/app", "groups": ["web"],
        **project})
    assert status == 201, body
    status, created = await api.post("/api/releases", {"project": "app", "ref": "main"})
    assert status == 201, created
    return await wait_for(api, created["id"])


async def test_revision_symlink_cannot_make_the_build_hook_write_on_ferrys_server(
        api, make_fleet, tmp_path):
    target = tmp_path / "ferry-server-file"
    repo = hostile_repo(tmp_path / "repo", [(FILE, "index.html", "hi\n"),
                                            (SYMLINK, "REVISION", str(target))])
    done = await release(api, make_fleet, repo, hooks=DEMO_PROJECT["hooks"])
    assert done["state"] == "failed"
    checkout = done["local"]["checkout"]
    assert checkout["state"] == "failed" and "absolute symlink" in checkout["reason"]
    assert "after_checkout" not in done["local"] or done["local"]["after_checkout"][
        "state"] != "ok"
    assert not target.exists()


async def test_marker_symlink_never_reaches_a_host(api, make_fleet, tmp_path):
    target = tmp_path / "host-owned"
    repo = hostile_repo(tmp_path / "repo", [(FILE, "index.html", "hi\n"),
                                            (SYMLINK, ".ferry-release", str(target))])
    done = await release(api, make_fleet, repo)
    assert done["state"] == "failed"
    assert ".ferry-release" in done["local"]["checkout"]["reason"]
    assert all(run["state"] != "ok" for run in done["host_runs"])
    assert not target.exists()


@pytest.mark.parametrize("settings_overrides", [{"repo_export_max_bytes": 100 * MiB}])
async def test_pack_bomb_release_fails_at_checkout_naming_the_quota(api, make_fleet, tmp_path,
                                                                     services):
    repo_path = tmp_path / "repo"
    hostile_repo(repo_path)
    zeros = blob_of_zeros(repo_path, 64 * MiB)
    repo = hostile_repo(repo_path, root=tree(
        repo_path, [(FILE, f"zeros-{n}.bin", zeros) for n in range(4)]))
    done = await release(api, make_fleet, repo)
    assert done["state"] == "failed"
    assert "quota repo_export_max_bytes" in done["local"]["checkout"]["reason"]
    written = sum(p.stat().st_size for p in services.settings.work_dir.rglob("*")
                  if p.is_file())
    assert written < MiB
