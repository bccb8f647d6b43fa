"""The project page's notification channels: add one, send a test, read its delivery log."""

from __future__ import annotations

import pytest

from tests.deploykit import register_project
from tests.handlers.test_notifications import Receiver

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("settings_overrides", [{"notify_allow_private": True}])
async def test_a_channel_added_in_the_page_sends_a_test_and_logs_it(page, api, app_repo):
    receiver = Receiver()
    try:
        await register_project(api, app_repo)
        await page.goto("/projects/app")
        await page.select_option("#channel-form select[name=kind]", "slack")
        await page.fill("#channel-form input[name=name]", "ops room")
        await page.fill("#channel-form input[name=url]", receiver.url + "/slack")
        await page.click("#channel-form button[type=submit]")
        row = page.locator("#channels tr", has_text="ops room")
        await row.wait_for()
        await row.get_by_role("button", name="Send test").click()
        await receiver.wait_for(1)
        await row.get_by_role("button", name="Deliveries").click()
        await page.wait_for_selector("#channel-log td:text-is('sent')")
    finally:
        receiver.server.stop()
