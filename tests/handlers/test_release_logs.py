"""Logs people can work with: a line for every stage, downloads (one host as text, the
whole release as a zip), and `?wait` on the release read so scripts follow a deploy."""

from __future__ import annotations

import io
import zipfile

import pytest
import tornado.httpclient

from services.releases.logexport import text_line
from services.releases.pipeline import HOST_STAGES
from tests.deploykit import deploy, deploy_and_wait, register_fleet, register_project

pytestmark = pytest.mark.slow


@pytest.fixture
async def registered(api, make_fleet, app_repo):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, health_check={"command": "test -f VERSION"})
    return fleet


async def download(api, path: str) -> tornado.httpclient.HTTPResponse:
    return await tornado.httpclient.AsyncHTTPClient().fetch(
        api.base_url + path, headers={"Authorization": f"Bearer {api.token}"},
        raise_error=False)


async def all_lines(api, release_id: int, host: str) -> list[dict]:
    status, page = await api.get(f"/api/releases/{release_id}/hosts/{host}/log")
    assert status == 200 and not page["more"], page
    return page["lines"]


async def test_every_stage_of_a_successful_host_writes_a_log_line(api, registered):
    """Also with no hooks (skipped stages) and a health check that passes at once."""
    release = await deploy_and_wait(api, "v2")
    assert release["state"] == "succeeded", release
    for run in release["host_runs"]:
        lines = await all_lines(api, release["id"], run["host"])
        assert {line["stage"] for line in lines} == set(HOST_STAGES), lines
        assert any(line["stage"] == "verify" and "health check passed" in line["line"]
                   for line in lines), lines
        assert all(isinstance(line["ts"], float) for line in lines)


async def test_a_host_log_downloads_as_text_with_the_same_lines_as_the_api(api, registered):
    release = await deploy_and_wait(api, "v1")
    host = release["host_runs"][0]["host"]
    response = await download(api, f"/api/releases/{release['id']}/hosts/{host}/log"
                                   "?format=text")
    assert response.code == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="release-{release["id"]}-{host}.log"')
    assert response.headers["Content-Type"].startswith("text/plain")
    lines = await all_lines(api, release["id"], host)
    assert response.body.decode() == "".join(text_line(line) for line in lines)
    assert [row.split(" ", 2)[2] for row in response.body.decode().splitlines()] == [
        line["line"] for line in lines]
    status, body = await api.get(f"/api/releases/{release['id']}/hosts/{host}/log?format=html")
    assert status == 400 and "format" in body["message"]


async def test_terminal_escapes_and_control_bytes_are_removed_from_the_text_download():
    entry = {"ts": 0.0, "stage": "extract", "line": "\x1b[31mred\x1b[0m\x07 \x00ok\tdone"}
    assert text_line(entry) == "1970-01-01T00:00:00.000Z [extract] red ok\tdone\n"


async def test_a_release_downloads_as_a_zip_with_one_log_per_host_and_a_summary(
        api, registered):
    release = await deploy_and_wait(api, "v2")
    response = await download(api, f"/api/releases/{release['id']}/logs")
    assert response.code == 200
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="release-{release["id"]}-logs.zip"')
    archive = zipfile.ZipFile(io.BytesIO(response.body))
    assert archive.testzip() is None
    hosts = [run["host"] for run in release["host_runs"]]
    assert sorted(archive.namelist()) == sorted(
        ["summary.txt", "build.log", *(f"{host}.log" for host in hosts)])
    assert f"release {release['id']}" in archive.read("summary.txt").decode()
    lines = await all_lines(api, release["id"], hosts[1])
    assert archive.read(f"{hosts[1]}.log").decode() == "".join(map(text_line, lines))


async def test_downloads_of_an_unknown_release_answer_404_in_json(api):
    assert (await download(api, "/api/releases/999/logs")).code == 404
    status, _ = await api.get("/api/releases/999/hosts/h/log?format=text")
    assert status == 404


async def test_wait_answers_once_the_release_has_ended_so_a_rollback_can_follow(
        api, registered):
    first = await deploy_and_wait(api, "v1")
    release = await deploy(api, "v2")
    status, ended = await api.get(f"/api/releases/{release['id']}?wait=120")
    assert status == 200 and ended["state"] == "succeeded", ended
    status, rollback = await api.post(f"/api/releases/{release['id']}/rollback")
    assert status == 201, rollback
    assert rollback["target_release"] == first["id"]
    for wait in ("100000", "nan", "-1", "inf"):      # beyond release_wait_max_s, or no number
        status, body = await api.get(f"/api/releases/{release['id']}?wait={wait}")
        assert status == 400 and "wait" in body["message"], (wait, body)
