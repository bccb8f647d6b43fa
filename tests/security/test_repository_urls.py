"""Hostile repository URLs through the real API and real remotes: option smuggling,
transport helpers, local files, private addresses, credentials and what errors reveal.
Every answer is a clear 4xx (the Api client also checks: JSON, never a traceback)."""

from __future__ import annotations

import asyncio
import logging
import string
import subprocess
from urllib.parse import quote

import pytest

from services.git.refs import redact_url, validate_repo_url
from tests.deploykit import make_app_repo
from tests.security.repokit import HttpsGitServer, Listener, https_status_server

DEPLOY = {"deploy_path": "/srv/app"}
NO_PRIVATE = pytest.mark.parametrize("settings_overrides", [{"outbound_allow_private": False}])


async def create(api, url: str, name: str = "app") -> tuple[int, dict]:
    return await api.post("/api/projects", {"name": name, "repo_url": url, **DEPLOY})


@pytest.mark.parametrize("url,attack", [
    ("--upload-pack=touch /tmp/ferry-pwned", "option smuggling into git clone"),
    ("-oProxyCommand=touch /tmp/ferry-pwned", "option smuggling into ssh"),
    ("ssh://-oProxyCommand=touch%20/tmp/ferry-pwned/x", "ssh host read as an option"),
    ("ext::sh -c touch% /tmp/ferry-pwned", "ext:: transport helper runs a command"),
    ("fd::17", "fd:: transport helper"),
    ("https://git.example.com/r.git\r\nX-Injected: 1", "CRLF header injection"),
    ("https://git.example.com/" + "a" * 3000, "overlong URL"),
    ("https://g\u0456thub.com/org/app.git", "unicode (Cyrillic i) look-alike host"),
    ("https://u:12/x@git.example.com/r.git", "credentials with a raw '/' read as a port"),
    ("http://git.example.com/r.git", "plain http (no transport security)"),
    ("git://git.example.com/r.git", "unauthenticated git:// protocol"),
    ("host:-x", "scp-like path read as an option"),
])
async def test_hostile_repository_url_is_refused_with_a_clear_400(url, attack, api, tmp_path):
    status, body = await create(api, url)
    assert status == 400, (attack, body)
    assert body["message"] and "Traceback" not in body["message"]
    status, _ = await api.get("/api/projects/app")
    assert status == 404, attack
    assert not (tmp_path / "ferry-pwned").exists()


@pytest.mark.parametrize("settings_overrides", [{"git_allow_file_urls": False}])
@pytest.mark.parametrize("url", ["file:///etc", "/srv/repo.git"])
async def test_local_repository_is_refused_when_file_urls_are_not_allowed(url, api):
    status, body = await create(api, url)
    assert status == 400 and "not allowed" in body["message"]


@NO_PRIVATE
@pytest.mark.parametrize("url,kind", [
    ("https://127.0.0.1/r.git", "loopback"),
    ("https://127.1/r.git", "loopback"),                  # short form of 127.0.0.1
    ("https://2130706433/r.git", "loopback"),             # 127.0.0.1 as one number
    ("https://localhost/r.git", "loopback"),
    ("https://[::1]/r.git", "loopback"),
    ("https://[::ffff:127.0.0.1]/r.git", "loopback"),     # IPv4-mapped IPv6
    ("https://169.254.169.254/latest/meta-data", "link-local"),  # cloud metadata
    ("https://10.1.2.3:8443/r.git", "private"),
    ("ssh://git@192.168.1.10/r.git", "private"),
    ("deploy@[fd00::1]:srv/r.git", "private"),
    ("https://0.0.0.0/r.git", "unspecified"),
    ("https://224.0.0.1/r.git", "multicast"),
])
async def test_repository_url_on_an_internal_address_is_refused(url, kind, api):
    status, body = await create(api, url)
    assert status == 400, body
    assert f"is a {kind} address" in body["message"]
    assert "outbound_allow_private" in body["message"]


@pytest.mark.parametrize("settings_overrides", [
    {"outbound_allow_private": False, "outbound_allow_cidrs": ("127.0.0.0/8",)}])
async def test_an_allowed_network_is_accepted_and_others_still_refused(api):
    assert (await create(api, "https://127.0.0.5/r.git"))[0] == 201
    status, body = await create(api, "https://10.0.0.1/r.git", name="other")
    assert status == 400 and "private address" in body["message"]


@NO_PRIVATE
async def test_address_policy_is_checked_again_right_before_each_fetch(api, services):
    # The URL was saved when the policy allowed it (or DNS answered otherwise then).
    listener = await Listener().start("127.0.0.1")
    try:
        await services.store.projects.insert_one({
            "name": "app", "repo_url": f"https://127.0.0.1:{listener.port}/r.git", **DEPLOY})
        status, body = await api.post("/api/projects/app/refresh")
        assert status == 400 and "loopback address" in body["message"]
        assert listener.accepted == 0
    finally:
        await listener.close()


# -- credentials -------------------------------------------------------------------------------

PASSWORD_CHARACTERS = [*string.printable.strip(), " ", "é", "密", "🔑", "%41", "%27%22"]


async def test_a_password_holding_any_character_is_never_shown(api):
    """Each printable ASCII character (quotes, @, :, /, #, ?, %, space), unicode and
    percent-encoded forms, raw and encoded: refused with a message without the secret,
    or accepted and redacted in every listing."""
    for n, char in enumerate(PASSWORD_CHARACTERS):
        secret = f"S3cr{char}etZ"
        for form in (secret, quote(secret, safe="")):
            url = f"https://bot:{form}@git.example.com/org/app.git"
            status, body = await create(api, url, name=f"p{n}")
            if status == 400:
                assert "S3cr" not in body["message"], (char, body)
                continue
            assert status == 201 and "S3cr" not in str(body), (char, body)
            listing = str((await api.get("/api/projects"))[1])
            one = str((await api.get(f"/api/projects/p{n}"))[1])
            assert "S3cr" not in listing and "S3cr" not in one, char
            assert (await api.delete(f"/api/projects/p{n}"))[0] == 204


def test_redaction_removes_every_accepted_password_from_any_text():
    for char in PASSWORD_CHARACTERS:
        url = f"https://bot:S3cr{char}etZ@git.example.com/org/app.git"
        try:
            validate_repo_url(url, allow_file=False)
        except ValueError:
            continue
        for text in (url, f"fatal: unable to access '{url}/': x", f'"{url}"', f"({url})"):
            assert "S3cr" not in redact_url(text), text


@pytest.fixture
def https_remote(tmp_path, monkeypatch):
    """A real repository behind a real HTTPS server that wants bot:<password with quotes>."""
    password = "ghp_S3cr'et\"x"
    source = make_app_repo(tmp_path / "src")
    bare = tmp_path / "served" / "app.git"
    bare.parent.mkdir()
    subprocess.run(["git", "clone", "-q", "--bare", str(source.path), str(bare)], check=True)
    server = HttpsGitServer(bare, "127.0.0.1", "bot", password)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(server.cert))     # git trusts this server
    yield server, password, source
    server.close()


async def test_a_password_with_quotes_never_reaches_the_api_or_the_log(api, https_remote,
                                                                      caplog):
    server, password, _ = https_remote
    userinfo = "bot:" + quote(password, safe="'\"")
    url = f"https://{userinfo}@127.0.0.1:{server.port}/app.git"
    assert "'" in url and '"' in url
    caplog.set_level(logging.INFO)
    caplog.set_level(logging.DEBUG, logger="ferry")
    assert (await create(api, url))[0] == 201
    status, refreshed = await api.post("/api/projects/app/refresh")
    assert status == 200 and refreshed["fetched"], refreshed
    assert {tag["name"] for tag in refreshed["tags"]} == {"v1", "v2", "v3"}
    assert "git: synced app from https://***@127.0.0.1" in caplog.text
    shown = [str(refreshed), str((await api.get("/api/projects"))[1]),
             str((await api.get("/api/projects/app"))[1]),
             str((await api.get("/api/projects/app/refs"))[1]), caplog.text]
    assert [text for text in shown if "S3cr" in text] == []


async def test_a_wrong_password_says_authentication_failed_without_the_secret(
        api, https_remote, caplog):
    server, _, _ = https_remote
    url = f"https://bot:n0t-the-S3cret'@127.0.0.1:{server.port}/app.git"
    assert (await create(api, url))[0] == 201
    status, body = await api.post("/api/projects/app/refresh")
    assert status == 400 and "Authentication failed" in body["message"], body
    assert "S3cret" not in body["message"] and "S3cret" not in caplog.text


# -- what errors reveal ------------------------------------------------------------------------

async def test_closed_stalled_and_tls_ports_give_one_and_the_same_error(
        api, tmp_path, monkeypatch):
    stalled = await Listener().start("127.0.0.1")
    not_git, not_git_port, _ = await https_status_server(tmp_path, "127.0.0.1",
                                                            "200 OK")
    plain = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    closed = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    closed_port = closed.sockets[0].getsockname()[1]
    closed.close()
    await closed.wait_closed()
    ports = {"closed": closed_port, "stalled": stalled.port,
             "plain-tcp": plain.sockets[0].getsockname()[1], "tls-untrusted": not_git_port}
    messages = {}
    try:
        for name, port in ports.items():
            assert (await create(api, f"https://127.0.0.1:{port}/r.git", name=name))[0] == 201
        for name in ports:
            status, body = await api.post(f"/api/projects/{name}/refresh")
            assert status == 400, body
            messages[name] = body["message"]
    finally:
        await stalled.close()
        for server in (not_git, plain):
            server.close()
            await server.wait_closed()
    assert len(set(messages.values())) == 1, messages
    assert "could not reach the repository" in messages["closed"]


@pytest.mark.parametrize("status_line,useful", [
    ("404 Not Found", "not found"), ("401 Unauthorized", "Authentication failed")])
async def test_not_found_and_authentication_errors_stay_useful(status_line, useful, api,
                                                               tmp_path, monkeypatch):
    server, port, cert = await https_status_server(tmp_path, "127.0.0.1", status_line)
    monkeypatch.setenv("GIT_SSL_CAINFO", str(cert))
    try:
        url = f"https://bot:S3cr'et@127.0.0.1:{port}/org/r.git"
        assert (await create(api, url))[0] == 201
        status, body = await api.post("/api/projects/app/refresh")
    finally:
        server.close()
        await server.wait_closed()
    assert status == 400 and useful in body["message"], body
    assert "S3cr" not in body["message"]


async def test_saving_the_settings_form_with_the_redacted_url_keeps_the_credentials(
        api, services):
    url = "https://bot:S3cr'et@git.example.com/org/app.git"
    assert (await create(api, url))[0] == 201
    _, shown = await api.get("/api/projects/app")
    assert shown["repo_url"] == "https://***@git.example.com/org/app.git"
    status, body = await api.put("/api/projects/app", {"repo_url": shown["repo_url"],
                                                       "description": "edited"})
    assert status == 200 and "S3cr" not in str(body)
    stored = await services.store.projects.find_one({"name": "app"})
    assert stored["repo_url"] == url and stored["description"] == "edited"
