"""Roles per project: members with viewer, deployer or maintainer on one project; global
roles give the same on every project; admins and maintainers manage members."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.deploykit import deploy_and_wait, register_fleet, register_project


async def new_user(services, base_url: str, name: str, role: str = "member") -> Api:
    user = await services.auth.create_user(name, f"{name}-password", role)
    return Api(base_url, await services.auth.create_token(user, "tests"))


@pytest.fixture
async def projects(api, app_repo) -> None:
    for name in ("alpha", "beta"):
        await register_project(api, app_repo, name)


async def test_an_admin_adds_changes_lists_and_removes_members(api, services, base_url,
                                                               projects):
    dora = await new_user(services, base_url, "dora")
    status, body = await api.put("/api/projects/alpha/members/dora", {"role": "viewer"})
    assert status == 200 and body["role"] == "viewer" and body["updated_by"] == "admin"
    status, body = await api.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    assert status == 200 and body["role"] == "deployer"
    _, body = await api.get("/api/projects/alpha/members")
    assert [(m["user"], m["role"]) for m in body["members"]] == [("dora", "deployer")]
    _, me = await dora.get("/api/me")
    assert me["role"] == "member" and me["projects"] == {"alpha": "deployer"}
    assert (await api.delete("/api/projects/alpha/members/dora"))[0] == 204
    assert (await dora.get("/api/projects/alpha"))[0] == 404
    assert (await api.delete("/api/projects/alpha/members/dora"))[0] == 404


async def test_a_bad_membership_is_refused(api, services, base_url, projects):
    await new_user(services, base_url, "dora")
    status, body = await api.put("/api/projects/alpha/members/dora", {"role": "admin"})
    assert status == 400 and "role must be one of" in body["message"]
    status, body = await api.put("/api/projects/alpha/members/nobody", {"role": "viewer"})
    assert status == 404 and "no user" in body["message"]
    status, body = await api.put("/api/projects/gamma/members/dora", {"role": "viewer"})
    assert status == 404 and "no project" in body["message"]


async def test_a_maintainer_edits_settings_and_hooks_and_manages_members(
        api, services, base_url, projects):
    mary = await new_user(services, base_url, "mary")
    await new_user(services, base_url, "dora")
    await api.put("/api/projects/alpha/members/mary", {"role": "maintainer"})
    status, body = await mary.put("/api/projects/alpha", {
        "hooks": {"after_release": "echo restarted"}, "description": "ours"})
    assert status == 200 and body["hooks"] == {"after_release": "echo restarted"}, body
    status, body = await mary.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    assert status == 200, body
    assert (await mary.delete("/api/projects/alpha/members/dora"))[0] == 204


async def test_a_maintainer_neither_retargets_hosts_nor_deletes_the_project(
        api, services, base_url, projects):
    mary = await new_user(services, base_url, "mary")
    await api.put("/api/projects/alpha/members/mary", {"role": "maintainer"})
    _, project = await mary.get("/api/projects/alpha")
    status, _ = await mary.put("/api/projects/alpha", {"groups": project["groups"],
                                                       "description": "same groups"})
    assert status == 200                         # sent unchanged, as the settings form does
    status, body = await mary.put("/api/projects/alpha", {"groups": ["db"]})
    assert status == 403 and "only an admin" in body["message"], body
    assert (await mary.delete("/api/projects/alpha"))[0] == 403
    assert (await mary.put("/api/projects/beta/members/mary", {"role": "viewer"}))[0] == 404


async def test_a_deployer_member_neither_edits_nor_manages_members(api, services, base_url,
                                                                   projects):
    dora = await new_user(services, base_url, "dora")
    await api.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    status, body = await dora.put("/api/projects/alpha", {"description": "x"})
    assert status == 403 and "maintainer" in body["message"], body
    status, _ = await dora.put("/api/projects/alpha/members/dora", {"role": "maintainer"})
    assert status == 403
    status, body = await dora.get("/api/projects/alpha/members")
    assert status == 200


async def test_global_roles_give_the_same_role_on_every_project(api, services, base_url,
                                                                projects):
    viewer = await new_user(services, base_url, "val", "viewer")
    _, body = await viewer.get("/api/projects")
    assert [p["name"] for p in body["projects"]] == ["alpha", "beta"]
    status, _ = await viewer.post("/api/releases", {"project": "beta", "ref": "v1"})
    assert status == 403
    # A membership adds to the global role: deployer on alpha, still viewer on beta.
    await api.put("/api/projects/alpha/members/val", {"role": "deployer"})
    assert (await viewer.post("/api/projects/alpha/refresh"))[0] == 200
    assert (await viewer.post("/api/projects/beta/refresh"))[0] == 403


async def test_a_deleted_projects_members_are_forgotten(api, services, base_url, projects,
                                                        app_repo):
    dora = await new_user(services, base_url, "dora")
    await api.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    assert (await api.delete("/api/projects/alpha"))[0] == 204
    await register_project(api, app_repo, "alpha")
    assert (await dora.get("/api/projects/alpha"))[0] == 404


async def test_membership_changes_are_audited(api, services, base_url, projects):
    await new_user(services, base_url, "dora")
    await api.put("/api/projects/alpha/members/dora", {"role": "viewer"})
    await api.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    await api.delete("/api/projects/alpha/members/dora")
    _, body = await api.get("/api/audit?project=alpha&action=member.")
    entries = [(e["action"], e["target"], e["details"]) for e in reversed(body["entries"])]
    assert entries == [("member.set", "dora", {"role": [None, "viewer"]}),
                       ("member.set", "dora", {"role": ["viewer", "deployer"]}),
                       ("member.remove", "dora", {"role": "deployer"})]


async def test_a_project_deployer_deploys_it_on_a_real_fleet(api, services, base_url,
                                                             app_repo, make_fleet):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, "alpha")
    dora = await new_user(services, base_url, "dora")
    await api.put("/api/projects/alpha/members/dora", {"role": "deployer"})
    release = await deploy_and_wait(dora, "v2", "alpha")
    assert release["state"] == "succeeded" and release["created_by"] == "dora"


async def test_a_deployer_deploys_only_to_the_projects_hosts_and_groups(api, services,
                                                                       base_url, projects):
    for name, groups in (("web-1", ["web"]), ("db-1", ["db"])):
        status, _ = await api.post("/api/hosts", {"name": name, "address": "127.0.9.1",
                                                  "groups": groups})
        assert status == 201
    dora = await new_user(services, base_url, "dora", "deployer")
    for target in ({"hosts": ["db-1"]}, {"groups": ["db"]}, {"hosts": ["web-1", "db-1"]}):
        status, body = await dora.post("/api/releases", {"project": "alpha", "ref": "v1",
                                                         **target})
        assert status == 403, body
        assert "db-1" in body["message"]
    status, body = await api.post("/api/releases", {"project": "alpha", "ref": "v1",
                                                    "hosts": ["db-1"]})
    assert status == 201, body
