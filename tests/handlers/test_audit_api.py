"""The audit log through the real server and database: every state-changing action the
tests perform is in `GET /api/audit` with its actor, address and channel; project edits
show their changes field by field, secrets masked; the reads filter and page; nothing
edits or deletes an entry."""

from __future__ import annotations

import inspect
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

import handlers
from services.team.audit import AuditLog
from tests.conftest import Api
from tests.deploykit import deploy, register_fleet, register_project, wait_for
from tests.handlers.chatkit import canary_with_vote, user_api, wait_for_vote

ROOT = Path(__file__).resolve().parent.parent.parent


async def audit(api: Api, **filters) -> list[dict]:
    query = "&".join(f"{name}={quote(str(value))}" for name, value in filters.items())
    status, page = await api.get(f"/api/audit?{query}")
    assert status == 200, page
    return page["entries"]


def one(entries: list[dict], action: str, **fields) -> dict:
    found = [e for e in entries if e["action"] == action
             and all(e.get(k) == v for k, v in fields.items())]
    assert found, f"no {action} {fields} in {[(e['action'], e['target']) for e in entries]}"
    return found[0]


async def test_sign_ins_failed_sign_ins_and_tokens_are_recorded(services, base_url, api):
    anonymous = Api(base_url, None)
    status, _ = await anonymous.post("/api/session", {"name": "admin", "password": "wrong-pw"})
    assert status == 403
    status, body = await anonymous.post("/api/session", {"name": "admin",
                                                          "password": "admin-password"})
    assert status == 201
    assert (await api.post("/api/tokens", {"name": "ci"}))[0] == 201
    entries = await audit(api)
    failed = one(entries, "auth.signin_failed")
    assert (failed["actor"], failed["target"], failed["via"], failed["address"]) == (
        "anonymous", "admin", "api", "127.0.0.1")
    assert "wrong-pw" not in str(entries)
    signin = one(entries, "auth.signin")
    assert (signin["actor"], signin["via"]) == ("admin", "api")
    token = one(entries, "token.create")
    assert token["actor"] == "admin" and token["via"] == "token:tests"
    assert token["details"]["name"] == "ci" and body["token"] not in str(entries)


async def test_hosts_and_projects_are_recorded_with_a_hook_edit_before_and_after(
        api, app_repo):
    host = {"name": "web-1", "address": "127.0.0.1", "user": "deploy",
            "variables": {"DB_PASSWORD": "hunter2", "REGION": "eu"}}
    bulk = {"hosts": [host, {"name": "web-2", "address": "127.0.0.2"}]}
    assert (await api.post("/api/hosts", bulk))[0] == 201
    assert (await api.put("/api/hosts/web-1", {"variables": {"DB_PASSWORD": "swordfish",
                                                              "REGION": "us"}}))[0] == 200
    await register_project(api, app_repo, hooks={"after_release": "systemctl restart app"})
    status, _ = await api.put("/api/projects/app", {"hooks": {
        "after_release": "systemctl reload app"}})
    assert status == 200
    assert (await api.delete("/api/hosts/web-1"))[0] == 204
    entries = await audit(api)
    assert {e["target"] for e in entries if e["action"] == "host.create"} == {"web-1", "web-2"}
    for action in ("host.create", "host.update", "host.delete", "project.create"):
        entry = one(entries, action)
        assert entry["actor"] == "admin" and entry["via"] == "token:tests"
    update = one(entries, "project.update", project="app")
    assert update["details"]["changes"] == {"hooks.after_release": {
        "before": "systemctl restart app", "after": "systemctl reload app"}}
    host_change = one(entries, "host.update")["details"]["changes"]
    assert host_change == {"variables.DB_PASSWORD": {"before": "***", "after": "***"},
                           "variables.REGION": {"before": "eu", "after": "us"}}
    assert "hunter2" not in str(entries) and "swordfish" not in str(entries)


async def test_secrets_in_project_fields_are_masked_in_the_details(api, app_repo):
    await register_project(api, app_repo, health_check={
        "url": "http://probe:s3cr3t-pw@127.0.0.1:9/health?token=t0k3n"})
    status, _ = await api.put("/api/projects/app", {"hooks": {
        "before_release": 'export API_TOKEN="abc-123-secret"\n./migrate'}})
    assert status == 200
    entries = await audit(api, project="app")
    text = str(entries)
    assert "s3cr3t-pw" not in text and "t0k3n" not in text and "abc-123" not in text
    created = one(entries, "project.create")["details"]["changes"]
    assert created["health_check.url"] == {"after": "http://***@127.0.0.1:9/health?token=***"}
    hook = one(entries, "project.update")["details"]["changes"]["hooks.before_release"]
    assert hook == {"after": 'export API_TOKEN=***\n./migrate'}


@pytest.mark.slow
async def test_release_actions_votes_and_chat_commands_are_recorded(
        services, base_url, api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    entries = await audit(api, action="host.")
    assert {e["action"] for e in entries} == {"host.create", "host.scan", "host.trust"}
    trust = one(entries, "host.trust", target=fleet.hosts[0].name)
    assert trust["details"]["fingerprint"] == fleet.hosts[0].fingerprint
    dora = await user_api(services, base_url, "dora", "deployer")

    first = await deploy(api, "v1", strategy=canary_with_vote(min_go=2))
    await wait_for_vote(api, first["id"])
    assert (await dora.post(f"/api/releases/{first['id']}/vote",
                            {"choice": "go", "comment": "canary fine"}))[0] == 200
    status, _ = await api.post(f"/api/chat/release-{first['id']}/messages", {"text": "/go"})
    assert status == 201                   # the second go: Ferry promotes
    await wait_for(api, first["id"])
    second = await deploy(api, "v2", strategy=canary_with_vote(min_go=2))
    await wait_for_vote(api, second["id"])
    assert (await api.post(f"/api/releases/{second['id']}/cancel"))[0] == 202
    await wait_for(api, second["id"])
    assert (await api.post(f"/api/releases/{second['id']}/rollback", {}))[0] == 201

    entries = await audit(api, project="app", action="release.")
    create = one(entries, "release.create", target=str(first["id"]))
    assert create["details"]["ref"] == "v1" and create["details"]["strategy"]["pause_after"]
    vote = one(entries, "release.vote", actor="dora")
    assert vote["via"].startswith("token:") and vote["details"]["comment"] == "canary fine"
    chat = one(entries, "release.vote", via="chat")
    assert chat["actor"] == "admin" and chat["details"]["choice"] == "go"
    promote = one(entries, "release.promote", target=str(first["id"]))
    assert (promote["actor"], promote["via"], promote["details"]["vote"]) == (
        "ferry", "ferry", "passed")
    cancel = one(entries, "release.cancel", target=str(second["id"]))
    assert cancel["via"] == "token:tests" and cancel["details"]["vote_overridden"]
    one(entries, "release.rollback", target=str(second["id"]))

async def test_wall_links_are_recorded_and_their_use_once_per_interval(base_url, api):
    status, link = await api.post("/api/wall/links", {"name": "lobby TV"})
    assert status == 201
    screen = Api(base_url, link["token"])
    for _ in range(3):
        assert (await screen.get("/api/wall"))[0] == 200
    assert (await api.delete(f"/api/wall/links/{link['id']}"))[0] == 200
    entries = await audit(api, action="wall_link.")
    assert [e["action"] for e in entries] == [
        "wall_link.revoke", "wall_link.use", "wall_link.create"]
    use = entries[1]
    assert use["actor"] == f"wall-link:{link['id']}" and use["via"] == "wall-link"
    assert link["token"] not in str(entries)


async def test_filters_by_actor_project_action_prefix_and_time_and_pages_newest_first(
        services, base_url, api, app_repo):
    dora = await user_api(services, base_url, "dora", "admin")
    await register_project(api, app_repo)
    await register_project(api, app_repo, name="other")
    assert (await dora.post("/api/hosts", {"name": "h1", "address": "127.0.0.1"}))[0] == 201
    assert (await dora.post("/api/hosts", {"name": "h2", "address": "127.0.0.1"}))[0] == 201
    assert [e["target"] for e in await audit(api, actor="dora")] == ["h2", "h1"]
    assert [e["target"] for e in await audit(api, project="other")] == ["other"]
    assert {e["action"] for e in await audit(api, action="host.")} == {"host.create"}
    assert await audit(api, action="host.") == await audit(api, action="host.create")
    now = datetime.now(UTC)
    assert len(await audit(api, since=(now - timedelta(minutes=5)).isoformat())) == 4
    assert await audit(api, until=(now - timedelta(minutes=5)).isoformat()) == []
    _, page = await api.get("/api/audit?limit=3")
    assert [e["target"] for e in page["entries"]] == ["h2", "h1", "other"]
    _, older = await api.get(f"/api/audit?limit=3&before={page['next_before']}")
    assert [e["target"] for e in older["entries"]] == ["app"]
    assert older["next_before"] is None


async def test_bad_filter_values_are_refused_with_400(api):
    for query in ("since=yesterday", "until=2026-13-40T00:00:00Z", "before=-1", "before=x",
                  "limit=0", "limit=100000", "action=Release;drop", "project=" + "p" * 300,
                  "since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z"):
        status, body = await api.get(f"/api/audit?{query}")
        assert status == 400, (query, body)


async def test_only_admins_read_the_log(services, base_url):
    viewer = await user_api(services, base_url, "vic", "deployer")
    assert (await viewer.get("/api/audit"))[0] == 403
    assert (await Api(base_url, None).get("/api/audit"))[0] == 401


async def test_no_verb_edits_or_deletes_an_entry(api):
    await api.post("/api/tokens", {"name": "x"})
    [entry] = await audit(api)
    for method in ("DELETE", "PUT", "PATCH", "POST"):
        body = None if method == "DELETE" else {"id": entry["id"]}
        status, _ = await api.request(method, "/api/audit", body)
        assert status in (403, 405), method
        status, _ = await api.request(method, f"/api/audit/{entry['id']}", body)
        assert status in (403, 404, 405), method
    assert await audit(api) == [entry]
    # The only code that touches the collection inserts and reads.
    assert not {"update", "delete", "remove", "replace"} & {
        name.split("_")[0] for name in dir(AuditLog) if not name.startswith("__")}
    for route in handlers.ROUTES:
        if "audit" in route[0]:
            assert not any(name in vars(route[1]) for name in ("put", "patch", "delete",
                                                                "post"))
    for path in [*ROOT.glob("handlers/**/*.py"), *ROOT.glob("services/**/*.py")]:
        if path.name == "audit.py":
            continue
        assert "store.audit" not in path.read_text(), path
    assert "store.audit.insert_one" in inspect.getsource(AuditLog)
