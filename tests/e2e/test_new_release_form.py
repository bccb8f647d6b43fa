"""The new release form: what is deployed now (a partly failed release and a rollback count),
refs failing to load leave the rest usable, and the strategy fields are checked in the page."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy_and_wait, make_app_repo, wait_for
from tests.e2e.helpers import fleet_and_project

pytestmark = pytest.mark.e2e


async def add_hosts(api, count: int) -> None:
    """Hosts in group web, by the API (no SSH server behind them: the form only lists them)."""
    for n in range(1, count + 1):
        status, body = await api.post("/api/hosts", {"name": f"web-{n}",
                                                     "address": f"127.0.9.{n}",
                                                     "groups": ["web"]})
        assert status == 201, body


async def add_project(api, repo_url: str) -> None:
    status, body = await api.post("/api/projects", {"name": "app", "repo_url": repo_url,
                                                    "deploy_path": "/srv/app",
                                                    "groups": ["web"]})
    assert status == 201, body


async def open_form(page, ref: str) -> None:
    await page.goto("/projects/app/release")
    await page.wait_for_selector(f"#ref-select option[value='{ref}']", state="attached")
    await page.select_option("#ref-select", ref)


async def test_deployed_now_is_a_release_that_failed_on_some_hosts(page, api, make_fleet,
                                                                   tmp_path):
    fleet = await make_fleet(3)
    repo = make_app_repo(tmp_path / "repo")
    await fleet_and_project(api, fleet, repo)
    assert (await deploy_and_wait(api, "v1"))["state"] == "succeeded"
    failing = fleet.hosts[1].name
    status, body = await api.put("/api/projects/app", {
        "hooks": {"before_release": f'[ "$FERRY_HOST" != "{failing}" ]'}})
    assert status == 200, body
    second = await deploy_and_wait(api, "v2")
    assert second["state"] == "failed" and second["counts"]["ok"] == 2

    await open_form(page, "v3")
    await page.wait_for_selector(
        f"#deployed-now:text-is('Deployed now: {repo.shas['v2'][:10]} "
        f"(release {second['id']}, on 2 of 3 hosts)')")
    # The changes start from v2, which those two hosts run: only v3's commit.
    await page.wait_for_selector(f"#changes-title:has-text('{repo.shas['v2'][:10]}')")
    assert await page.locator("#changes tr").count() == 1
    assert "Release v3" in await page.inner_text("#changes")


async def test_deployed_now_after_a_rollback_is_its_target_commit(page, api, make_fleet,
                                                                   tmp_path):
    fleet = await make_fleet(2)
    repo = make_app_repo(tmp_path / "repo")
    await fleet_and_project(api, fleet, repo)
    await deploy_and_wait(api, "v1")
    second = await deploy_and_wait(api, "v2")
    status, rollback = await api.post(f"/api/releases/{second['id']}/rollback")
    assert status == 201, rollback
    rollback = await wait_for(api, rollback["id"])
    assert rollback["state"] == "succeeded"

    await open_form(page, "v3")
    await page.wait_for_selector(
        f"#deployed-now:text-is('Deployed now: {repo.shas['v1'][:10]} "
        f"(release {rollback['id']}, on 2 of 2 hosts)')")
    await page.wait_for_selector(f"#changes-title:has-text('{repo.shas['v1'][:10]}')")
    assert await page.locator("#changes tr").count() == 2


async def test_refs_failing_to_load_leave_the_ref_field_and_hosts_usable(page, api,
                                                                         page_watch,
                                                                         tmp_path):
    page_watch.allow("status of 400")
    await add_hosts(api, 2)
    await add_project(api, f"file://{tmp_path}/no-such-repo")

    await page.goto("/projects/app/release")
    await page.wait_for_selector("#page-error:has-text('Branches and tags could not be loaded')")
    assert await page.inner_text("#ref-select") == "(type a branch, tag or SHA below)"
    # The hosts are listed and picked, the plan is shown and Start can be pressed.
    await page.wait_for_selector("#plan-summary:text-is('2 hosts in 1 batch')")
    assert await page.is_checked("input.host-check[value='web-1']")
    await page.uncheck("input.host-check[value='web-2']")
    assert await page.inner_text("#plan-summary") == "1 host in 1 batch"
    # A typed SHA is taken as it is; its details come once the release resolves it.
    await page.fill("#ref-input", "0123abcd")
    await page.wait_for_selector(
        "#ref-info:has-text('0123abcd — commit details appear once the release resolves it')")
    assert await page.is_enabled("#start-release")


async def test_invalid_strategy_values_show_a_message_and_disable_start(page, api, tmp_path):
    await add_hosts(api, 4)
    await add_project(api, make_app_repo(tmp_path / "repo").url)
    await open_form(page, "v3")
    summary = page.locator("#plan-summary")
    error = page.locator("#strategy-error")
    start = page.locator("#start-release")
    await page.wait_for_selector("#plan-summary:text-is('4 hosts in 1 batch')")

    await page.check("input[name=preset][value=rolling]")
    for bad in ("abc", "0", "0%", "101%", ""):
        await page.fill("input[name=batch]", bad)
        assert (await error.inner_text()).startswith("Batch size must be a number of hosts"), bad
        assert await start.is_disabled(), bad
        assert await summary.inner_text() == "4 hosts"
        assert await page.get_attribute("input[name=batch]", "aria-invalid") == "true"
    await page.fill("input[name=batch]", "25%")
    assert await error.is_hidden() and await start.is_enabled()
    assert await summary.inner_text() == "4 hosts in 4 batches"

    await page.check("input[name=preset][value=canary]")
    await page.fill("input[name=canary]", "x")
    assert (await error.inner_text()).startswith("Canary hosts must be")
    assert await start.is_disabled()
    await page.fill("input[name=canary]", "1")
    assert await summary.inner_text() == "4 hosts in 2 batches"

    await page.fill("input[name=max_fail]", "-1")
    assert (await error.inner_text()).startswith("Failures allowed must be empty")
    await page.fill("input[name=max_fail]", "0")
    assert await error.is_hidden()

    await page.fill("input[name=parallel]", "0")
    assert (await error.inner_text()) == "Hosts at once must be a whole number from 1 to 1000."
    assert await start.is_disabled()
    await page.fill("input[name=parallel]", "5")
    assert await error.is_hidden() and await start.is_enabled()


@pytest.mark.parametrize("browser_locale", ["zh-CN"])
async def test_new_release_form_in_chinese(page, api, tmp_path):
    await add_hosts(api, 1)
    await add_project(api, make_app_repo(tmp_path / "repo").url)
    await open_form(page, "v3")
    await page.wait_for_selector("#plan-summary:text-is('1 台主机，分 1 批')")  # noqa: RUF001
    assert await page.inner_text("#deployed-now") == "此项目尚无已部署的发布。"
    await page.check("input[name=preset][value=rolling]")
    await page.fill("input[name=batch]", "abc")
    assert (await page.inner_text("#strategy-error")).startswith("每批主机数必须是主机数")
