"""A hook that floods its output (a million short lines) through the real server and a
fleet of real SSH servers: the release still succeeds, the log is kept up to the caps, in
order, with one marker, never twice, and the server's own log stays small."""

from __future__ import annotations

import logging
import re

import pytest

from tests.deploykit import deploy_and_wait, hosts_by_name, register_fleet, register_project

pytestmark = pytest.mark.slow

FLOOD = "yes | head -c 2000000"   # 2 MB: a million lines of "y"
MAX_LINES = 10_000


async def read_whole_log(api, release_id: int, host: str) -> list[dict]:
    lines, after = [], 0
    while True:
        status, page = await api.get(f"/api/releases/{release_id}/hosts/{host}/log"
                                     f"?after={after}&limit=5000")
        assert status == 200, page
        lines += page["lines"]
        after = page["next"]
        if not page["more"]:
            return lines


async def test_a_million_line_hook_succeeds_and_keeps_its_log_up_to_the_line_cap(
        api, make_fleet, app_repo, caplog):
    caplog.set_level(logging.INFO)
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": FLOOD + "; echo after-flood"})
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    runs = hosts_by_name(release)
    assert [run["state"] for run in runs.values()] == ["ok", "ok"], runs
    for host in runs:
        lines = await read_whole_log(api, release["id"], host)
        numbers = [line["n"] for line in lines]
        assert numbers == list(range(1, len(numbers) + 1)), "log lines missing or repeated"
        hook = [line["line"] for line in lines if line["stage"] == "before_release"]
        assert hook[:MAX_LINES] == ["y"] * MAX_LINES
        assert len(hook) == MAX_LINES + 1
        assert "output truncated at 10000 lines" in hook[-1] and "discarded" in hook[-1]
        assert runs[host].get("log_lines_lost", 0) == 0
    assert len(caplog.text) < 2_000_000
    assert not re.search(r"\b5\d\d (GET|POST|PUT|DELETE) ", caplog.text)


@pytest.mark.parametrize("settings_overrides", [{
    # Caps raised and the log byte budget disabled, so one line reaches the database
    # bigger than it accepts (16 MiB).
    "ssh_line_max_bytes": 20 * 1024 * 1024, "ssh_step_output_max_bytes": 40 * 1024 * 1024,
    "log_batch_max_bytes": 64 * 1024 * 1024}])
async def test_a_release_succeeds_when_the_database_refuses_part_of_its_log(
        api, make_fleet, app_repo, caplog):
    caplog.set_level(logging.INFO)
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={
        "before_release": "echo before; head -c 17000000 /dev/zero | tr '\\0' a; echo; "
                          "echo after"})
    release = await deploy_and_wait(api, "v1")
    assert release["state"] == "succeeded", release
    run = hosts_by_name(release)["host-0"]
    assert run["state"] == "ok" and run["log_lines_lost"] == 1
    assert release["log_lines_lost"] == 1
    hook = [line["line"] for line in await read_whole_log(api, release["id"], "host-0")
            if line["stage"] == "before_release"]
    assert hook == ["before", "after"]
    assert "aaaaaaaa" not in caplog.text and len(caplog.text) < 2_000_000
