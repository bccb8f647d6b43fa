"""Rollback, retry and pruning through the JSON API on real SSH hosts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.deploykit import (
    current_target,
    deploy,
    deploy_and_wait,
    hosts_by_name,
    read_current,
    register_fleet,
    register_project,
    wait_for,
)

pytestmark = pytest.mark.slow


@pytest.fixture
async def fleet(make_fleet, api, app_repo):
    fleet = await make_fleet(3)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, keep_releases=3)
    return fleet


async def test_rollback_restores_the_previous_current_on_every_host_with_no_upload(
        api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    v2 = await deploy_and_wait(api, "v2")
    commands = [host.commands for host in fleet.hosts]
    status, rollback = await api.post(f"/api/releases/{v2['id']}/rollback")
    assert status == 201, rollback
    done = await wait_for(api, rollback["id"])
    assert done["state"] == "succeeded", done
    assert done["kind"] == "rollback" and done["target_release"] == v1["id"]
    for index in range(3):
        assert current_target(fleet, index) == f"releases/{v1['id']}"
        assert read_current(fleet, index, "VERSION") == "v1\n"
    for run in done["host_runs"]:
        assert run["stages"]["upload"]["state"] == "skipped"
        assert run["stages"]["extract"]["state"] == "skipped"
    assert all(stage["state"] == "skipped" for stage in done["local"].values())
    ran = [host.commands - before for host, before in zip(fleet.hosts, commands, strict=True)]
    assert ran == [1, 1, 1]  # the switch alone: no upload, no extract


async def test_rollback_to_an_older_kept_release(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    await deploy_and_wait(api, "v2")
    v3 = await deploy_and_wait(api, "v3")
    status, rollback = await api.post(f"/api/releases/{v3['id']}/rollback", {"to": v1["id"]})
    assert status == 201, rollback
    done = await wait_for(api, rollback["id"])
    assert done["state"] == "succeeded", done
    assert all(read_current(fleet, i, "VERSION") == "v1\n" for i in range(3))


async def test_rollback_to_a_pruned_release_fails_each_host_with_the_reason(api, make_fleet,
                                                                             app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, keep_releases=1)
    v1 = await deploy_and_wait(api, "v1")
    v2 = await deploy_and_wait(api, "v2")
    status, rollback = await api.post(f"/api/releases/{v2['id']}/rollback", {"to": v1["id"]})
    assert status == 201, rollback
    done = await wait_for(api, rollback["id"])
    assert done["state"] == "failed"
    for run in done["host_runs"]:
        assert f"release {v1['id']} is no longer kept" in run["reason"]
    assert all(read_current(fleet, i, "VERSION") == "v2\n" for i in range(2))


async def test_rollback_switches_back_only_the_hosts_the_release_switched(api, fleet):
    await deploy_and_wait(api, "v1")
    canary = await deploy(api, "v2", strategy={"batches": [1, "100%"], "pause_after": [1]})
    await wait_for(api, canary["id"], ("paused",))
    await api.post(f"/api/releases/{canary['id']}/cancel")
    await wait_for(api, canary["id"])
    status, rollback = await api.post(f"/api/releases/{canary['id']}/rollback")
    assert status == 201 and rollback["hosts"] == ["host-0"], rollback
    done = await wait_for(api, rollback["id"])
    assert done["state"] == "succeeded", done
    assert all(read_current(fleet, i, "VERSION") == "v1\n" for i in range(3))


async def test_a_rollback_names_its_source_and_its_target_with_ref_and_sha(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    v2 = await deploy_and_wait(api, "v2")
    _, rollback = await api.post(f"/api/releases/{v2['id']}/rollback")
    assert rollback["rollback_of"] == v2["id"] and rollback["target_release"] == v1["id"]
    assert (rollback["ref"], rollback["sha"]) == ("v1", v1["sha"])
    await wait_for(api, rollback["id"])


async def test_a_rollback_plan_names_the_target_and_the_hosts_before_anything_runs(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    v2 = await deploy_and_wait(api, "v2")
    status, plan = await api.get(f"/api/releases/{v2['id']}/rollback")
    assert status == 200, plan
    assert plan["target"] == {"id": v1["id"], "ref": "v1", "sha": v1["sha"]}
    assert sorted(plan["hosts"]) == sorted(v2["hosts"])
    _, releases = await api.get("/api/releases")
    assert releases["releases"][0]["id"] == v2["id"]          # nothing was started


async def test_rollback_of_a_release_that_switched_no_host_is_refused(api, fleet):
    await deploy_and_wait(api, "v1")
    await api.put("/api/projects/app", {"hooks": {"before_release": "exit 1"}})
    failed = await deploy_and_wait(api, "v2")
    assert failed["state"] == "failed"
    status, body = await api.post(f"/api/releases/{failed['id']}/rollback")
    assert status == 400, body
    assert body["message"] == f"release {failed['id']} switched no host; nothing to roll back"


async def test_rollback_with_no_earlier_success_is_refused(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    status, body = await api.post(f"/api/releases/{v1['id']}/rollback")
    assert status == 400 and "no successful release" in body["message"]


async def test_retry_deploys_only_the_failed_hosts(api, fleet):
    marker = Path(fleet.host_path(1, "/srv/fail-here"))
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text("x")
    await api.put("/api/projects/app", {"hooks": {"before_release": "test ! -f /srv/fail-here"}})
    first = await deploy_and_wait(api, "v2")
    assert hosts_by_name(first)["host-1"]["state"] == "failed"
    marker.unlink()
    before = [host.connections_total for host in fleet.hosts]
    status, retry = await api.post(f"/api/releases/{first['id']}/retry")
    assert status == 201, retry
    done = await wait_for(api, retry["id"])
    assert done["state"] == "succeeded" and done["kind"] == "retry"
    assert done["hosts"] == ["host-1"] and done["retry_of"] == first["id"]
    assert [h.connections_total - b for h, b in zip(fleet.hosts, before, strict=True)] == [0, 1, 0]
    assert read_current(fleet, 1, "VERSION") == "v2\n"


async def test_keep_releases_prunes_old_releases_and_keeps_current(api, fleet):
    ids = [(await deploy_and_wait(api, ref))["id"] for ref in ("v1", "v2", "v3", "v1")]
    for index in range(3):
        kept = sorted(int(name) for name in os.listdir(fleet.host_path(index, "/srv/app/releases")))
        assert kept == ids[1:]
        assert current_target(fleet, index) == f"releases/{ids[-1]}"


async def test_prune_never_removes_the_release_current_points_to(services, fleet):
    from services.releases import remote

    host = fleet.hosts[0]
    root = Path(fleet.host_path(0, "/srv/keep"))
    for release in range(1, 6):
        (root / "releases" / str(release)).mkdir(parents=True)
        (root / "releases" / str(release) / ".ferry-release").write_text(f"release={release}\n")
    os.symlink("releases/2", root / "current")
    session = await services.ssh.connect({"name": host.name, "address": host.address,
                                          "port": host.port, "user": "deploy",
                                          "key_path": str(fleet.client_key_path)})
    try:
        result = await session.run(remote.prune("/srv/keep", 2), timeout=10)
    finally:
        await session.close()
    assert result.exit_status == 0
    assert sorted(os.listdir(root / "releases")) == ["2", "4", "5"]


async def test_auto_rollback_switches_done_hosts_back_when_max_fail_is_exceeded(api, fleet):
    v1 = await deploy_and_wait(api, "v1")
    await api.put("/api/projects/app", {"hooks": {
        "before_release": '[ "$FERRY_HOST" != host-2 ] || exit 1'}})
    release = await deploy_and_wait(api, "v2", strategy={
        "parallel": 1, "max_fail": 0, "auto_rollback": True})
    runs = hosts_by_name(release)
    assert release["state"] == "rolled_back", release
    assert [runs[f"host-{i}"]["state"] for i in range(3)] == ["rolled_back", "rolled_back",
                                                              "failed"]
    for index in range(3):
        assert current_target(fleet, index) == f"releases/{v1['id']}"
