"""History in the browser: the host page, the project page's chart and rollback to a kept
release, and on the release page the commits it ships and the log tools (times, downloads).
Saves screenshots of the host and project pages at 1280 and 1920 pixels wide."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy_and_wait, make_app_repo
from tests.e2e.helpers import fleet_and_project, wait_for_release_state

pytestmark = pytest.mark.e2e


@pytest.fixture
async def two_releases(api, make_fleet, tmp_path):
    fleet = await make_fleet(2)
    repo = make_app_repo(tmp_path / "repo")
    await fleet_and_project(api, fleet, repo)
    first = await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v3")
    return {"fleet": fleet, "repo": repo, "first": first, "second": second}


async def shoot(page, artifacts, name: str) -> None:
    for width in (1280, 1920):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.screenshot(path=str(artifacts / f"{name}-{width}.png"), full_page=True)


async def test_history_the_release_page_commits_and_logs_the_host_page_and_rollback(
        page, two_releases, artifacts):
    """In one browser session over one deploy history (a fleet and two releases): the
    release page lists its commits and offers log times and downloads; the host page
    lists the host's releases; the project page rolls back to a kept release."""
    second = two_releases["second"]
    repo = two_releases["repo"]
    await page.goto(f"/releases/{second['id']}")
    assert await wait_for_release_state(page) == "succeeded"
    await page.wait_for_selector("#release-commits tr td.mono")
    rows = await page.locator("#release-commits tr").all_inner_texts()
    assert [row.split("\t")[1:3] for row in rows] == [["Release v3", "Test"],
                                                      ["Release v2", "Test"]]
    assert await page.inner_text("#commits-range") == (
        f"{repo.shas['v1'][:10]} → {repo.shas['v3'][:10]}")
    assert await page.get_attribute("#logs-download", "href") == (
        f"/api/releases/{second['id']}/logs")

    host = two_releases["fleet"].hosts[1].name
    await page.click(f"#host-rows .vrow[data-host='{host}'] .cell-batch")
    await page.wait_for_selector("#log .log-line")
    assert await page.get_attribute("#log-download", "href") == (
        f"/api/releases/{second['id']}/hosts/{host}/log?format=text")
    assert not await page.is_visible("#log .log-time")
    await page.check("#log-times")
    assert await page.is_visible("#log .log-time >> nth=0")
    await page.reload()                    # the choice is remembered
    await page.click(f"#host-rows .vrow[data-host='{host}'] .cell-batch")
    await page.wait_for_selector("#log .log-line")
    assert await page.is_checked("#log-times")
    assert await page.is_visible("#log .log-time >> nth=0")
    await page.set_viewport_size({"width": 1280, "height": 800})
    await page.locator(".log-panel").screenshot(
        path=str(artifacts / "release-log-panel-1280.png"))
    await page.set_viewport_size({"width": 1440, "height": 900})

    first, second = two_releases["first"], two_releases["second"]
    host = two_releases["fleet"].hosts[0].name
    await page.goto("/hosts")
    await page.click(f"#hosts a[href='/hosts/{host}']")
    await page.wait_for_selector(f"#host-releases tr[data-release='{first['id']}']")
    rows = await page.locator("#host-releases tr").all_inner_texts()
    assert [row.split("\t")[0] for row in rows] == [f"#{second['id']}", f"#{first['id']}"]
    assert f"releases/{second['id']}" in await page.inner_text("#host-current")
    assert "none" in await page.inner_text("#host-failures")
    await shoot(page, artifacts, "host-page")

    await page.set_viewport_size({"width": 1440, "height": 900})
    await page.goto("/projects/app")
    await page.wait_for_selector("#release-chart canvas")
    # The live release cannot be rolled back to; the earlier one, still kept, can.
    assert await page.locator(f"button[data-rollback-to='{second['id']}']").count() == 0
    await page.wait_for_selector(f"button[data-rollback-to='{first['id']}']")
    await shoot(page, artifacts, "project-page")
    await page.click(f"button[data-rollback-to='{first['id']}']")
    await page.wait_for_selector("#confirm[open]")
    assert "2" in await page.inner_text("#confirm-text")
    await page.click("#confirm-ok")
    await page.wait_for_url("**/releases/*")
    assert await wait_for_release_state(page) == "succeeded"
    assert "rollback" in (await page.inner_text("#release-meta")).lower()


