"""/healthz, /readyz and /metrics: public probes, and Prometheus figures that move with a
release, behind an admin's credentials, a metrics token or a listener of their own."""

from __future__ import annotations

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.netutil
from prometheus_client.parser import text_string_to_metric_families

from server import make_metrics_app
from services.embedded_db import free_port
from services.ssh.client import SshError
from tests.deploykit import deploy_and_wait, register_fleet, register_project

METRICS_TOKEN = "scrape-secret-0123456789"


async def fetch(url: str, token: str | None = None) -> tornado.httpclient.HTTPResponse:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await tornado.httpclient.AsyncHTTPClient().fetch(url, headers=headers,
                                                            raise_error=False)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """Every sample of a scrape, by (name, sorted labels)."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_healthz_answers_anyone_without_touching_the_database(anonymous_api):
    status, body = await anonymous_api.get("/healthz")
    assert (status, body) == (200, {"status": "ok"})


async def test_healthz_ignores_a_bogus_token(base_url):
    response = await fetch(base_url + "/healthz", token="not-a-token")
    assert response.code == 200


async def test_readyz_is_ready_when_the_database_answers(anonymous_api):
    status, body = await anonymous_api.get("/readyz")
    assert (status, body) == (200, {"status": "ok"})


async def test_readyz_is_unavailable_once_shutdown_begins(anonymous_api, services):
    services.releases.begin_stop()
    status, body = await anonymous_api.get("/readyz")
    assert status == 503
    assert body["message"] == "shutting down"


async def test_metrics_refuses_an_anonymous_scrape(base_url):
    response = await fetch(base_url + "/metrics")
    assert response.code == 401


async def test_metrics_refuses_a_non_admin(base_url, services):
    user = await services.auth.create_user("vera", "viewer-password-1", "viewer")
    token = await services.auth.create_token(user, "scrape")
    response = await fetch(base_url + "/metrics", token)
    assert response.code == 403


async def test_metrics_parse_and_count_a_release(base_url, api, admin_token, make_fleet,
                                                 app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    before = samples((await fetch(base_url + "/metrics", admin_token)).body.decode())
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded"
    response = await fetch(base_url + "/metrics", admin_token)
    assert response.code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    after = samples(response.body.decode())
    succeeded = ("ferry_releases_total", (("outcome", "succeeded"), ("project", "app")))
    assert after[succeeded] - before.get(succeeded, 0) == 1
    assert after[("ferry_host_runs_total", (("outcome", "ok"),))] >= 2
    assert after[("ferry_stage_duration_seconds_count",
                  (("outcome", "ok"), ("stage", "upload")))] >= 2
    assert ("ferry_event_subscribers", ()) in after
    assert any(name == "ferry_http_requests_total" for name, _ in after)


async def test_metrics_have_no_per_host_label(base_url, api, admin_token, make_fleet,
                                              app_repo):
    fleet = await make_fleet(2)
    hosts = await register_fleet(api, fleet)
    await register_project(api, app_repo)
    await deploy_and_wait(api, "v1")
    text = (await fetch(base_url + "/metrics", admin_token)).body.decode()
    for host in hosts:
        assert host not in text


async def test_ssh_connection_failures_are_counted_by_kind(base_url, admin_token, services,
                                                           make_fleet):
    fleet = await make_fleet(1)
    closed_port = free_port()
    with pytest.raises(SshError):
        await services.ssh.connect({"address": "127.0.0.1", "port": closed_port,
                                    "user": "deploy", "key_path": str(fleet.client_key_path)})
    after = samples((await fetch(base_url + "/metrics", admin_token)).body.decode())
    assert after[("ferry_ssh_connection_failures_total", (("reason", "refused"),))] == 1


@pytest.mark.parametrize("settings_overrides", [{"metrics_token": METRICS_TOKEN}])
async def test_a_metrics_token_is_the_only_key(base_url, admin_token):
    assert (await fetch(base_url + "/metrics", admin_token)).code == 401
    assert (await fetch(base_url + "/metrics", "x" * len(METRICS_TOKEN))).code == 401
    assert (await fetch(base_url + "/metrics", METRICS_TOKEN)).code == 200


@pytest.mark.parametrize("settings_overrides", [{"metrics_port": 1}])
async def test_a_separate_metrics_listener_serves_what_the_main_port_does_not(
        base_url, admin_token, services):
    assert (await fetch(base_url + "/metrics", admin_token)).code == 404
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_metrics_app(services))
    server.add_sockets(sockets)
    try:
        port = sockets[0].getsockname()[1]
        response = await fetch(f"http://127.0.0.1:{port}/metrics")
        assert response.code == 200
        assert "ferry_releases" in response.body.decode()
        assert (await fetch(f"http://127.0.0.1:{port}/api/projects")).code == 404
    finally:
        server.stop()
