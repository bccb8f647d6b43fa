"""What is where: a host's releases across projects (paged), what `current` points to per
project, its last failures; and the commits a release ships."""

from __future__ import annotations

import pytest

from tests.deploykit import current_target, deploy_and_wait, register_fleet, register_project

pytestmark = pytest.mark.slow


@pytest.fixture
def settings_overrides() -> dict:
    return {"release_commits_max": 1}      # so that "and N more" shows with a few commits


@pytest.fixture
async def history(api, make_fleet, app_repo):
    """v1 then v3 of `app` on both hosts, then a failing release of `other` on host 0."""
    fleet = await make_fleet(2)
    hosts = await register_fleet(api, fleet)
    await register_project(api, app_repo)
    first = await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v3")
    await register_project(api, app_repo, name="other", hosts=[hosts[0]], groups=[],
                           hooks={"before_release": "echo broken; exit 3"})
    failed = await deploy_and_wait(api, "v2", project="other")
    assert (first["state"], second["state"], failed["state"]) == (
        "succeeded", "succeeded", "failed")
    return {"fleet": fleet, "hosts": hosts, "first": first, "second": second,
            "failed": failed}


async def test_a_host_shows_its_releases_where_current_points_and_its_failures(api, history):
    """One deploy history, read four ways (it takes a fleet and three releases to build)."""
    fleet, host = history["fleet"], history["hosts"][0]
    # Its releases across projects, newest first, a page at a time.
    status, page = await api.get(f"/api/hosts/{host}/releases?limit=2")
    assert status == 200, page
    assert [(row["release_id"], row["project"], row["state"]) for row in page["releases"]] == [
        (history["failed"]["id"], "other", "failed"),
        (history["second"]["id"], "app", "ok")]
    status, rest = await api.get(f"/api/hosts/{host}/releases?limit=2&before={page['next']}")
    assert [row["release_id"] for row in rest["releases"]] == [history["first"]["id"]]
    assert rest["next"] is None
    # What `current` points to per project, and since when (`other` never switched it).
    assert [(entry["project"], entry["release_id"]) for entry in page["current"]] == [
        ("app", history["second"]["id"])]
    assert current_target(fleet, 0) == f"releases/{history['second']['id']}"
    assert page["current"][0]["since"]
    # Its last failures, with their reasons; the other host has none.
    assert [(row["release_id"], row["project"]) for row in page["failures"]] == [
        (history["failed"]["id"], "other")]
    assert "before_release" in page["failures"][0]["reason"]
    _, other = await api.get(f"/api/hosts/{history['hosts'][1]}/releases")
    assert other["failures"] == []
    # A host nobody knows has no history; a cursor or a limit that is not one is refused.
    status, body = await api.get("/api/hosts/nobody/releases")
    assert status == 404, body
    for query in ("before=x", "before=-1", "limit=0", "before=%C2%B2"):
        status, body = await api.get(f"/api/hosts/{host}/releases?{query}")
        assert status == 400, (query, body)


async def test_a_release_lists_the_commits_since_the_previous_successful_release(
        api, history, app_repo):
    """And a first release, the history up to its commit."""
    second = history["second"]
    status, result = await api.get(f"/api/releases/{second['id']}/commits")
    assert status == 200, result
    assert (result["base"], result["target"]) == (app_repo.shas["v1"], app_repo.shas["v3"])
    assert result["total"] == 2                      # v2 and v3; one listed (the setting)
    assert [(c["sha"], c["subject"], c["author"]) for c in result["commits"]] == [
        (app_repo.shas["v3"], "Release v3", "Test")]
    status, result = await api.get(f"/api/releases/{history['first']['id']}/commits")
    assert status == 200
    assert result["base"] is None and result["total"] == 1
    assert result["commits"][0]["sha"] == app_repo.shas["v1"]
