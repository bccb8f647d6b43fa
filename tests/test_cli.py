"""The installed `ferry` command, run as a subprocess against the real server, database and
fleet: deploy and wait, exit codes a CI job acts on, JSON output, long-poll fallback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
import tornado.web

from tests.deploykit import register_fleet, register_project, wait_for

FERRY = str(Path(sys.executable).parent / "ferry")


async def ferry(*args: str, url: str, token: str | None, config: Path,
                stdin: bytes | None = None) -> tuple[int, str, str]:
    env = {**os.environ, "FERRY_URL": url, "FERRY_CONFIG": str(config)}
    env.pop("FERRY_TOKEN", None)
    if token is not None:
        env["FERRY_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        FERRY, *args, env=env, stdin=asyncio.subprocess.PIPE if stdin is not None else
        asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(stdin), 150)
    return process.returncode, out.decode(), err.decode()


@pytest.fixture
async def cli(base_url, admin_token, tmp_path):
    async def run(*args: str, token: str | None = admin_token, url: str = base_url,
                  stdin: bytes | None = None) -> tuple[int, str, str]:
        return await ferry(*args, url=url, token=token, config=tmp_path / "credentials.json",
                           stdin=stdin)
    return run


@pytest.fixture
async def fleet_project(api, make_fleet, app_repo):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


@pytest.fixture
async def canary_project(api, make_fleet, app_repo):
    """Two hosts: a canary batch of one, then the other."""
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def test_deploy_wait_exits_0_and_ends_with_the_counts(cli, fleet_project):
    code, out, err = await cli("deploy", "app", "v1", "--wait")
    assert code == 0, err
    last = out.strip().splitlines()[-1]
    assert "succeeded" in last and "1 ok, 0 failed" in last and "1 hosts" in last


async def test_a_release_with_a_failing_hook_exits_1_and_names_the_host(cli, api,
                                                                        fleet_project):
    await api.put("/api/projects/app", {"hooks": {"before_release": "echo broken; exit 3"}})
    code, out, _ = await cli("deploy", "app", "v1", "--wait")
    assert code == 1
    assert "failed" in out.strip().splitlines()[-1]
    assert "host " in out and " failed: " in out


async def test_a_bad_token_exits_2_with_one_line(cli, fleet_project):
    code, out, err = await cli("deploy", "app", "v1", "--wait", token="not-a-real-token")
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith("ferry: ")


async def test_usage_errors_exit_2(cli):
    code, _, _ = await cli("deploy", "app")
    assert code == 2
    code, _, err = await cli("deploy", "app", "v1", "--strategy", "[1, 2]")
    assert code == 2 and "JSON object" in err


async def test_a_timeout_exits_3_and_the_release_keeps_running(cli, api, fleet_project):
    await api.put("/api/projects/app", {"hooks": {"before_release": "sleep 4"}})
    code, out, _ = await cli("deploy", "app", "v1", "--wait", "--timeout", "1")
    assert code == 3
    assert "after the timeout" in out
    _, releases = await api.get("/api/releases?project=app")
    release = releases["releases"][0]
    assert release["state"] in ("pending", "running")
    assert (await wait_for(api, release["id"]))["state"] == "succeeded"


async def test_cancel_on_timeout_cancels_the_release(cli, api, fleet_project):
    await api.put("/api/projects/app", {"hooks": {"before_release": "sleep 4"}})
    code, _, _ = await cli("deploy", "app", "v1", "--wait", "--timeout", "1",
                           "--cancel-on-timeout")
    assert code == 3
    _, releases = await api.get("/api/releases?project=app")
    final = await wait_for(api, releases["releases"][0]["id"])
    assert final["state"] == "cancelled"


async def test_json_output_is_parseable(cli, fleet_project):
    code, out, _ = await cli("-o", "json", "deploy", "app", "v1", "--wait")
    assert code == 0
    release = json.loads(out)
    assert release["state"] == "succeeded"
    assert {run["state"] for run in release["host_runs"]} == {"ok"}
    code, out, _ = await cli("-o", "json", "releases", "--project", "app")
    assert json.loads(out)["releases"][0]["id"] == release["id"]


class NoWebSocketProxy(tornado.web.RequestHandler):
    """Forwards every request to Ferry except /ws, which is unreachable (404)."""

    def initialize(self, upstream: str) -> None:
        self.upstream = upstream

    async def get(self) -> None:
        await self._forward()

    async def post(self) -> None:
        await self._forward()

    async def _forward(self) -> None:
        if self.request.path == "/ws":
            raise tornado.web.HTTPError(404)
        headers = {k: v for k, v in self.request.headers.items()
                   if k.lower() in ("authorization", "content-type")}
        response = await tornado.httpclient.AsyncHTTPClient().fetch(
            self.upstream + self.request.uri, method=self.request.method, headers=headers,
            body=self.request.body if self.request.method == "POST" else None,
            raise_error=False, request_timeout=120)
        self.set_status(response.code)
        self.set_header("Content-Type", response.headers.get("Content-Type", "text/plain"))
        self.finish(response.body or b"")


async def test_watch_without_a_websocket_finishes_by_long_polling(cli, api, base_url,
                                                                  fleet_project):
    app = tornado.web.Application([(r".*", NoWebSocketProxy, {"upstream": base_url})])
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets(sockets)
    proxy = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        await api.put("/api/projects/app", {"hooks": {"before_release": "sleep 3"}})
        status, release = await api.post("/api/releases", {"project": "app", "ref": "v1"})
        assert status == 201
        code, out, err = await cli("watch", str(release["id"]), url=proxy)
        assert code == 0, err
        assert "long-polling" in err
        assert "succeeded" in out.strip().splitlines()[-1]
    finally:
        server.stop()


async def test_login_with_a_token_stores_it_for_later_commands(cli, admin_token, tmp_path,
                                                               fleet_project):
    code, out, _ = await cli("login", "--token", admin_token, token=None)
    assert code == 0 and "admin" in out
    stored = tmp_path / "credentials.json"
    assert stored.stat().st_mode & 0o777 == 0o600
    code, out, _ = await cli("projects", token=None)
    assert code == 0 and "app" in out


async def test_login_with_a_password_from_the_prompt(cli, tmp_path):
    code, out, err = await cli("login", "--user", "admin", token=None,
                               stdin=b"admin-password\n")
    assert code == 0, err
    assert "signed in" in out
    code, _, _ = await cli("releases", token=None)
    assert code == 0


async def test_promote_continues_a_paused_release_and_a_vote_with_none_open_exits_2(
        cli, api, canary_project):
    strategy = json.dumps({"batches": [1, "100%"], "pause_after": [1]})
    code, out, _ = await cli("deploy", "app", "v1", "--strategy", strategy)
    assert code == 0
    release_id = int(out.split()[1])
    await wait_for(api, release_id, ("paused",))
    code, out, _ = await cli("promote", str(release_id))
    assert code == 0 and "promote accepted" in out
    assert (await wait_for(api, release_id))["state"] == "succeeded"
    code, _, err = await cli("vote", str(release_id), "go")
    assert code == 2 and err.startswith("ferry: ")


async def test_log_prints_a_hosts_lines(cli, api, fleet_project):
    code, out, _ = await cli("-o", "json", "deploy", "app", "v1", "--wait")
    release = json.loads(out)
    host = release["host_runs"][0]["host"]
    code, out, _ = await cli("log", str(release["id"]), host, "--follow")
    assert code == 0
    _, page = await api.get(f"/api/releases/{release['id']}/hosts/{host}/log")
    assert out.splitlines() == [line["line"] for line in page["lines"]]


async def test_chat_sends_a_message_to_a_room(cli, api):
    code, out, _ = await cli("chat", "lobby", "-m", "hello from CI")
    assert code == 0 and "hello from CI" in out
    _, page = await api.get("/api/chat/lobby/messages")
    assert page["messages"][-1]["text"] == "hello from CI"


async def test_hosts_import_reads_an_ansible_inventory(cli, api, tmp_path):
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("[web]\nweb-[1:2] ansible_host=127.0.9.1\n")
    code, out, _ = await cli("hosts", "import", str(inventory))
    assert code == 0 and "imported 2 hosts" in out
    inventory.write_text("[web\n")
    code, _, err = await cli("hosts", "import", str(inventory))
    assert code == 2 and "line 1" in err
