"""Deploying through the JSON API to a fleet of real SSH servers: refs, hooks, strategy."""

from __future__ import annotations

import asyncio
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
async def fleet(make_fleet):
    return await make_fleet(3)


@pytest.fixture
async def registered(api, fleet, app_repo):
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_deploy_by_tag_switches_every_host_to_that_version(api, registered, app_repo):
    release = await deploy_and_wait(api, "v2")
    assert release["state"] == "succeeded", release
    assert release["sha"] == app_repo.shas["v2"]
    for index in range(3):
        assert current_target(registered, index) == f"releases/{release['id']}"
        assert read_current(registered, index, "VERSION") == "v2\n"


async def test_deploy_by_branch_takes_the_branch_head(api, registered, app_repo):
    release = await deploy_and_wait(api, "main")
    assert release["state"] == "succeeded", release
    assert release["sha"] == app_repo.shas["v3"]
    assert read_current(registered, 0, "VERSION") == "v3\n"


async def test_deploy_by_commit_sha_takes_that_commit(api, registered, app_repo):
    release = await deploy_and_wait(api, app_repo.shas["v1"])
    assert release["state"] == "succeeded", release
    assert read_current(registered, 2, "VERSION") == "v1\n"


async def test_deploy_by_short_sha_resolves_once_to_the_full_sha(api, registered, app_repo):
    release = await deploy_and_wait(api, app_repo.shas["v1"][:10])
    assert release["sha"] == app_repo.shas["v1"]


async def test_an_unknown_ref_fails_the_release_with_git_s_message(api, registered):
    status, body = await api.post("/api/releases", {"project": "app", "ref": "nope"})
    assert status == 201, body
    release = await wait_for(api, body["id"])
    assert release["state"] == "failed" and "nope" in release["reason"], release
    assert release["sha"] is None
    assert {run["state"] for run in release["host_runs"]} == {"skipped"}


async def test_a_ref_that_looks_like_an_option_is_refused(api, registered):
    status, body = await api.post("/api/releases", {"project": "app",
                                                    "ref": "--upload-pack=touch x"})
    assert status == 400, body


async def test_each_hook_runs_at_its_place_with_its_output_kept_per_host(api, registered):
    hooks = {
        "before_checkout": "echo before-checkout-ran",
        "after_checkout": "echo built > BUILT && echo after-checkout-ran",
        "before_release": "echo before-release in $(pwd) && test -f BUILT",
        "after_release": "echo after-release in $(pwd -P)",
    }
    status, _ = await api.put("/api/projects/app", {"hooks": hooks})
    assert status == 200
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    rid = release["id"]
    status, log = await api.get(f"/api/releases/{rid}/hosts/host-1/log")
    by_stage = {}
    for line in log["lines"]:
        by_stage.setdefault(line["stage"], []).append(line["line"])
    assert f"before-release in /srv/app/releases/{rid}" in by_stage["before_release"]
    assert f"after-release in /srv/app/releases/{rid}" in by_stage["after_release"]
    status, local = await api.get(f"/api/releases/{rid}/hosts/_local/log")
    local_lines = [line["line"] for line in local["lines"]]
    assert "before-checkout-ran" in local_lines and "after-checkout-ran" in local_lines
    assert read_current(registered, 1, "BUILT") == "built\n"
    stages = hosts_by_name(release)["host-1"]["stages"]
    assert [s for s in stages] == ["upload", "extract", "before_release", "release",
                                   "after_release", "verify", "prune"]
    assert all("duration_ms" in entry for entry in stages.values())


async def test_a_hook_failing_on_one_host_fails_only_that_host(api, registered):
    await api.put("/api/projects/app", {"hooks": {
        "before_release": 'echo "checking $FERRY_HOST"; [ "$FERRY_HOST" != host-1 ] || '
                          '{ echo "migration failed" >&2; exit 7; }'}})
    release = await deploy_and_wait(api, "v1")
    runs = hosts_by_name(release)
    assert release["state"] == "failed"
    assert runs["host-1"]["state"] == "failed"
    assert "before_release" in runs["host-1"]["reason"] and "7" in runs["host-1"]["reason"]
    assert runs["host-0"]["state"] == runs["host-2"]["state"] == "ok"
    _, log = await api.get(f"/api/releases/{release['id']}/hosts/host-1/log")
    assert "migration failed" in [line["line"] for line in log["lines"]]
    assert not os.path.lexists(registered.host_path(1, "/srv/app/current"))


async def test_hook_scripts_see_ferry_values_as_environment_variables(
        api, registered, app_repo):
    ref = "feature/x;touch${IFS}pwned$(touch${IFS}pwned2)'\"`id`"
    app_repo.git("branch", ref)
    await api.put("/api/projects/app", {"hooks": {
        "before_release": 'printf "%s" "$FERRY_REF" > ref.txt; '
                          'printf "%s %s %s" "$FERRY_RELEASE_ID" "$FERRY_HOST" "$FERRY_SHA" '
                          '> values.txt'}})
    release = await deploy_and_wait(api, ref)
    assert release["state"] == "succeeded", release
    assert read_current(registered, 0, "ref.txt") == ref
    assert read_current(registered, 0, "values.txt") == (
        f"{release['id']} host-0 {app_repo.shas['v3']}")
    leftovers = [p for p in Path(registered.host_path(0, "/srv")).rglob("pwned*")]
    assert leftovers == [] and not Path("pwned").exists()


async def test_no_more_than_parallel_hosts_run_at_once(api, make_fleet, app_repo, tmp_path):
    fleet = await make_fleet(6)
    await register_fleet(api, fleet)
    board = tmp_path / "running"
    board.mkdir()
    await register_project(api, app_repo, hooks={"before_release": (
        f"touch {board}/$FERRY_HOST; sleep 0.4; ls {board} | wc -l >> {board}.seen; "
        f"rm {board}/$FERRY_HOST")})
    release = await deploy_and_wait(api, "v1", strategy={"parallel": 2})
    assert release["state"] == "succeeded", release
    seen = [int(n) for n in Path(f"{board}.seen").read_text().split()]
    assert len(seen) == 6 and max(seen) <= 2


async def test_max_fail_stops_scheduling_new_hosts(api, make_fleet, app_repo):
    fleet = await make_fleet(5)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": "exit 1"})
    before = sum(h.connections_total for h in fleet.hosts)
    release = await deploy_and_wait(api, "v1", strategy={"parallel": 1, "max_fail": 1})
    counts = release["counts"]
    assert release["state"] == "failed" and "max_fail" in release["reason"]
    assert counts["failed"] == 2 and counts["skipped"] == 3
    assert sum(h.connections_total for h in fleet.hosts) - before == 2


async def test_ramp_with_a_pause_stops_after_the_first_host_until_promoted(
        api, make_fleet, app_repo):
    fleet = await make_fleet(7)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    release = await deploy(api, "v1", strategy={"batches": [1, 5, "100%"],
                                                "pause_after": [1]})
    paused = await wait_for(api, release["id"], ("paused",))
    assert paused["counts"]["ok"] == 1 and paused["counts"]["pending"] == 6
    assert paused["paused_after_batch"] == 1
    status, _ = await api.post(f"/api/releases/{release['id']}/promote")
    assert status == 202
    done = await wait_for(api, release["id"])
    assert done["state"] == "succeeded" and done["counts"]["ok"] == 7
    assert [len(batch) for batch in done["batches"]] == [1, 5, 1]


async def test_promote_refuses_a_release_that_is_not_paused(api, registered):
    release = await deploy_and_wait(api, "v1")
    status, body = await api.post(f"/api/releases/{release['id']}/promote")
    assert status == 409 and "not paused" in body["message"]


async def test_cancel_stops_scheduling_and_ends_running_steps(api, make_fleet, app_repo):
    fleet = await make_fleet(4)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": "sleep 30"})
    release = await deploy(api, "v1", strategy={"parallel": 1})
    await wait_for_stage(api, release["id"], "before_release")
    status, _ = await api.post(f"/api/releases/{release['id']}/cancel")
    assert status == 202
    done = await wait_for(api, release["id"], timeout=20)
    assert done["state"] == "cancelled"
    assert done["counts"]["cancelled"] == 1 and done["counts"]["skipped"] == 3
    assert not any(os.path.lexists(fleet.host_path(i, "/srv/app/current")) for i in range(4))


async def wait_for_stage(api, release_id: int, stage: str) -> None:
    for _ in range(300):
        _, release = await api.get(f"/api/releases/{release_id}")
        if any(run["stage"] == stage for run in release["host_runs"]):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no host reached {stage}")


async def test_a_second_release_on_a_locked_project_gets_409(api, registered):
    await api.put("/api/projects/app", {"hooks": {"before_release": "sleep 2"}})
    first = await deploy(api, "v1")
    status, body = await api.post("/api/releases", {"project": "app", "ref": "v2"})
    assert status == 409
    assert f"release {first['id']}" in body["message"] and "admin" in body["message"]
    await wait_for(api, first["id"])
    second = await deploy_and_wait(api, "v2")
    assert second["state"] == "succeeded"


async def test_a_start_refused_by_the_lock_takes_no_release_id(api, registered):
    first = await deploy(api, "v1", strategy={"batches": [1, "100%"], "pause_after": [1]})
    await wait_for(api, first["id"], ("paused",))
    status, _ = await api.post("/api/releases", {"project": "app", "ref": "v2"})
    assert status == 409
    await api.post(f"/api/releases/{first['id']}/cancel")
    await wait_for(api, first["id"])
    second = await deploy(api, "v2")
    assert second["id"] == first["id"] + 1


BIG = "99999999999999999999999"


@pytest.mark.parametrize("method, path", [
    ("GET", f"/api/releases/{BIG}"), ("POST", f"/api/releases/{BIG}/cancel"),
    ("POST", f"/api/releases/{BIG}/promote"), ("POST", f"/api/releases/{BIG}/retry"),
    ("POST", f"/api/releases/{BIG}/rollback"), ("GET", f"/api/releases/{BIG}/hosts/h/log"),
    ("GET", "/api/releases/9223372036854775808"), ("GET", "/api/releases/" + "9" * 5000)])
async def test_a_release_id_too_big_for_the_database_is_not_found(api, method, path):
    status, body = await api.request(method, path)
    number = path.split("/")[3]
    assert status == 404 and body["message"] == f"no release {number[:40]}", body


async def test_the_same_commit_deployed_again_skips_the_upload(api, registered):
    first = await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v1")
    assert second["state"] == "succeeded"
    assert not any(run.get("upload_skipped") for run in first["host_runs"])
    assert all(run.get("upload_skipped") for run in second["host_runs"])
    assert second["artifact"]["cached"] is True
    assert second["local"]["checkout"]["state"] == "skipped"


async def test_one_ssh_connection_per_host_per_release(api, registered):
    await api.put("/api/projects/app", {"hooks": {"before_release": "true",
                                                  "after_release": "true"},
                                        "health_check": {"command": "test -f VERSION"}})
    before = [host.connections_total for host in registered.hosts]
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded"
    after = [host.connections_total for host in registered.hosts]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    assert all(host.commands >= 5 for host in registered.hosts)


async def test_cancel_during_the_build_stops_the_release_before_any_host(api, registered):
    await api.put("/api/projects/app", {"hooks": {"after_checkout": "sleep 30"}})
    release = await deploy(api, "v1")
    for _ in range(200):
        _, live = await api.get(f"/api/releases/{release['id']}")
        if live["local"].get("after_checkout", {}).get("state") == "running":
            break
        await asyncio.sleep(0.05)
    status, _ = await api.post(f"/api/releases/{release['id']}/cancel")
    assert status == 202
    done = await wait_for(api, release["id"], timeout=15)
    assert done["state"] == "cancelled"
    assert done["local"]["after_checkout"]["state"] == "cancelled"
    assert done["counts"]["skipped"] == 3
    assert sum(host.connections_total for host in registered.hosts) == 6  # scan + trust only


async def test_a_host_log_is_read_in_pages(api, registered):
    await api.put("/api/projects/app", {"hooks": {"before_release": "seq 1 30"}})
    release = await deploy_and_wait(api, "v1")
    path = f"/api/releases/{release['id']}/hosts/host-0/log"
    _, first = await api.get(path + "?limit=10")
    assert len(first["lines"]) == 10 and first["more"] is True
    _, rest = await api.get(f"{path}?after={first['next']}&limit=1000")
    numbers = [line["n"] for line in first["lines"] + rest["lines"]]
    assert numbers == list(range(1, len(numbers) + 1)) and rest["more"] is False
    assert [line["line"] for line in rest["lines"] if line["stage"] == "before_release"][-1] == "30"


async def test_a_release_snapshot_names_the_event_it_is_current_to(api, registered):
    started = await deploy(api, "v1")
    events, after = [], 0
    # Follow the stream to the release's final event (the state in memory, which a
    # snapshot reads, may be a moment ahead of its event being published).
    while not events or events[-1]["type"] != "release" or (
            events[-1]["data"]["state"] != "succeeded"):
        _, page = await api.get(f"/api/events?topic=release:{started['id']}&after={after}"
                                "&wait=5")
        events += page["events"]
        after = page["next"]
    _, release = await api.get(f"/api/releases/{started['id']}")
    assert release["seq"] == events[-1]["seq"]
    _, page = await api.get(f"/api/events?topic=release:{started['id']}&after={after}&wait=0")
    assert page["events"] == []
    _, listing = await api.get("/api/releases")
    assert listing["wall_seq"] >= 1 and listing["releases"][0]["id"] == release["id"]
