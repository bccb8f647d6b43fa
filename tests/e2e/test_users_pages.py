"""The users page (admins) and the tokens page (everyone's own tokens), in a real browser."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.deploykit import register_project

pytestmark = pytest.mark.e2e


async def test_an_admin_creates_a_user_who_then_signs_in(page, browser, base_url, api):
    await page.goto("/users")
    form = page.locator("#user-form")
    await form.locator("input[name=name]").fill("nina")
    await form.locator("select[name=role]").select_option("deployer")
    await form.locator("input[name=password]").fill("nina-password")
    await form.locator("button[type=submit]").click()
    row = page.locator("#users tr[data-user=nina]")
    await row.wait_for()
    assert await row.locator("select").input_value() == "deployer"
    _, body = await api.get("/api/users/nina")
    assert body["role"] == "deployer" and body["last_signin_at"] is None

    # Disable, then enable again, from the list.
    await row.locator("button", has_text="Disable").click()
    await page.locator("#confirm-ok").click()
    await page.locator("#users tr[data-user=nina] .user-status[data-disabled=true]").wait_for()
    assert (await api.get("/api/users/nina"))[1]["disabled"] is True
    await page.locator("#users tr[data-user=nina] button", has_text="Enable").click()
    await page.locator("#users tr[data-user=nina] .user-status[data-disabled=false]").wait_for()

    # She signs in with the password the admin set; the list then shows when.
    other = await browser.new_context(base_url=base_url)
    login = await other.new_page()
    await login.goto("/login")
    await login.fill("input[name=name]", "nina")
    await login.fill("input[name=password]", "nina-password")
    await login.click("section.login button[type=submit]")
    await login.wait_for_url(f"{base_url}/")
    assert await login.locator("nav.mainnav a[href='/tokens']").count() == 1
    assert await login.locator("nav.mainnav a[href='/users']").count() == 0
    await other.close()
    await page.reload()
    last = page.locator("#users tr[data-user=nina] td").nth(3)
    assert await last.inner_text() not in ("", "Never")


async def test_a_token_is_created_in_the_page_shown_once_then_revoked(page, base_url):
    await page.goto("/tokens")
    await page.fill("#token-form input[name=name]", "ci runner")
    await page.fill("#token-form input[name=days]", "30")
    await page.click("#token-form button[type=submit]")
    await page.locator("#new-token:not([hidden])").wait_for()
    secret = await page.input_value("#token-secret")
    assert secret.startswith("fy_")
    row = page.locator("#tokens tr", has_text="ci runner")
    await row.wait_for()
    status, me = await Api(base_url, secret).get("/api/me")
    assert status == 200 and me["name"] == "admin"

    await page.reload()                  # shown once: never again after this
    assert await page.locator("#new-token").is_hidden()
    assert secret not in await page.content()
    await row.wait_for()

    await row.locator("button", has_text="Revoke").click()
    await page.locator("#confirm-ok").click()
    await row.wait_for(state="detached")
    assert (await Api(base_url, secret).get("/api/me"))[0] == 401


async def test_a_member_sees_only_their_projects_in_the_pages(browser, base_url, api, services,
                                                               app_repo, page_watch):
    for name in ("alpha", "beta"):
        await register_project(api, app_repo, name)
    await services.auth.create_user("nina", "nina-password", "member")
    await api.put("/api/projects/alpha/members/nina", {"role": "maintainer"})
    context = await browser.new_context(base_url=base_url)
    context.on("page", page_watch.attach)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=name]", "nina")
    await page.fill("input[name=password]", "nina-password")
    await page.click("section.login button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    await page.locator("#projects a[href='/projects/alpha']").wait_for()
    assert await page.locator("#projects a[href='/projects/beta']").count() == 0
    assert await page.locator("nav.mainnav a[href='/hosts']").count() == 0

    await page.goto("/projects/alpha")         # a maintainer: may save, may not delete
    assert await page.locator("#settings-form button[type=submit]").is_visible()
    assert await page.locator("#delete-project").is_hidden()

    page_watch.allow("404")
    response = await page.goto("/projects/beta")
    assert response.status == 404
    await context.close()
