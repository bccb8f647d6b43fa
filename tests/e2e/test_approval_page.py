"""Approval in the browser, on a real fleet: the initiator's release page shows who is
awaited and no Approve button; the approver finds the release on the dashboard, approves
it from its page, and the initiator's page follows it as it starts and deploys."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy
from tests.e2e.conftest import WATCH_CSP, PageWatch
from tests.e2e.helpers import fleet_and_project, wait_for_release_state

pytestmark = pytest.mark.e2e


async def sign_in(browser, base_url: str, services, name: str, role: str,
                  page_watch: PageWatch):
    """A new user with `role`, and a browser context signed in as them through the login
    form (closed by the caller), watched for script errors like the admin's."""
    password = f"{name}-password"
    await services.auth.create_user(name, password, role)
    context = await browser.new_context(base_url=base_url,
                                        viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(30_000)
    await context.add_init_script(WATCH_CSP)
    context.on("page", page_watch.attach)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=name]", name)
    await page.fill("input[name=password]", password)
    await page.click("section.login button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    await page.close()
    return context


async def test_a_second_user_approves_from_the_page_and_the_first_sees_it_start(
        page, api, browser, base_url, services, page_watch, make_fleet, app_repo, artifacts):
    await fleet_and_project(api, await make_fleet(2), app_repo, approval={
        "required": 1, "approvers": ["dora"], "exclude_initiator": True})
    dora_context = await sign_in(browser, base_url, services, "dora", "deployer", page_watch)
    try:
        release = await deploy(api, "v2")
        await page.goto(f"/releases/{release['id']}")
        await page.locator("#gate-panel").wait_for()
        assert await page.get_attribute("#release-state", "data-state") == "awaiting_approval"
        assert "Awaiting: dora" in await page.inner_text("#gate-awaited")
        assert await page.locator("#btn-approve").is_hidden()
        assert "started release" in await page.inner_text("#gate-refusal")

        dora = await dora_context.new_page()
        await dora.goto("/")
        await dora.locator(f"#awaiting-me li[data-release='{release['id']}']").wait_for()
        await dora.click(f"#awaiting-me li[data-release='{release['id']}'] a")
        await dora.locator("#btn-approve").wait_for()
        await page.screenshot(path=str(artifacts / "release-awaiting-approval.png"),
                              full_page=True)
        await dora.fill("#gate-comment", "<img src=x onerror=alert(1)> looks good")
        async with page.expect_navigation():        # it started: the page draws the run
            await dora.click("#btn-approve")
        assert await wait_for_release_state(page) == "succeeded"
        assert await wait_for_release_state(dora) == "succeeded"
        approvals = page.locator("#gate-approvals")
        assert "Approved by dora" in await approvals.inner_text()
        assert "<img src=x onerror=alert(1)> looks good" in await approvals.inner_text()
        assert await approvals.locator("img").count() == 0      # shown as text, never HTML
    finally:
        await dora_context.close()
