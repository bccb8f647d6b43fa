"""The audit page: an admin filters the log by actor (the filter lives in the URL, so the
view can be bookmarked), sees a project edit as before → after, and user values as
text, never markup."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.deploykit import register_project
from tests.handlers.chatkit import user_api

pytestmark = pytest.mark.e2e
NASTY = '<img src=x onerror="window.__pwned = 1">'


async def test_the_audit_page_filters_by_actor(page, page_watch, services, base_url, api,
                                               app_repo):
    dora = await user_api(services, base_url, "dora", "admin")
    await register_project(api, app_repo, description="first")
    assert (await dora.put("/api/projects/app", {"description": NASTY}))[0] == 200
    assert (await dora.post("/api/hosts", {"name": "web-1", "address": "127.0.0.1"}))[0] == 201

    await page.goto("/")
    await page.click(".mainnav a[href='/audit']")
    await page.wait_for_selector("#audit-entries tr[data-id]")
    # The admin's own sign-in through the login page is the oldest entry.
    assert await page.locator("#audit-entries .audit-action").all_inner_texts() == [
        "host.create", "project.update", "project.create", "auth.signin"]

    await page.fill("input[name=actor]", "dora")
    await page.click("#audit-filters button[type=submit]")
    await page.wait_for_url("**/audit?actor=dora")
    await page.wait_for_selector("#audit-entries tr[data-id]")
    actors = await page.locator("#audit-entries .audit-actor").all_inner_texts()
    assert actors == ["dora", "dora"]
    actions = await page.locator("#audit-entries .audit-action").all_inner_texts()
    assert actions == ["host.create", "project.update"]
    change = page.locator("#audit-entries tr[data-id] >> nth=1").locator(".audit-changes")
    assert await change.locator(".audit-before").inner_text() == "first"
    assert await change.locator(".audit-after").inner_text() == NASTY
    assert await page.evaluate("window.__pwned") is None

    # A name tried at sign-in is anyone's text: shown as text to the admin.
    assert (await Api(base_url, None).post("/api/session", {"name": NASTY,
                                                            "password": "x"}))[0] == 403
    await page.goto("/audit?action=auth.")
    await page.wait_for_selector("#audit-entries tr[data-id]")
    assert await page.inner_text("#audit-entries tr[data-id] >> nth=0 >> td >> nth=5") == NASTY
    assert await page.evaluate("window.__pwned") is None

    await page.goto("/audit?actor=nobody")
    await page.wait_for_selector("#audit-entries td.muted")
    page_watch.allow("400")
    await page.goto("/audit?since=yesterday")
    await page.wait_for_selector("#page-error:not([hidden])")
    assert "since" in await page.inner_text("#page-error")
