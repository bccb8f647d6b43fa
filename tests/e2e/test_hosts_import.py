"""The hosts page's import: the server's reason for refusing a list shows by the import box."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


async def test_a_refused_import_shows_the_servers_reason_by_the_import_box(page, api,
                                                                          page_watch):
    page_watch.allow("status of 400")
    page_watch.allow("status of 409")
    status, body = await api.post("/api/hosts", {"name": "web-1", "address": "127.0.9.1"})
    assert status == 201, body
    await page.goto("/hosts")
    await page.wait_for_selector("#hosts tr[data-host='web-1']")
    await page.fill("#import-form textarea[name=lines]",
                    "web-2 127.0.9.2 deploy web\n\nweb-3 not!an!address deploy web")
    await page.click("#import-form button[type=submit]")
    box = page.locator("section:has(#import-form) #import-error")
    await box.wait_for()
    assert (await box.inner_text()).startswith("Nothing was imported: ")
    assert "address" in await box.inner_text()
    assert await page.locator("#hosts tr[data-host='web-2']").count() == 0

    await page.fill("#import-form textarea[name=lines]", "web-1 127.0.9.1\nweb-4 127.0.9.4")
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#import-error:has-text('exist')")
    assert (await box.inner_text()).startswith("Nothing was imported: ")

    await page.fill("#import-form textarea[name=lines]", "web-4 127.0.9.4:2222 deploy web")
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#page-notice:text-is('Imported 1 host.')")
    assert await box.is_hidden()


async def test_an_ansible_inventory_pasted_in_the_hosts_page_imports_its_hosts(page, api,
                                                                             page_watch):
    page_watch.allow("status of 400")
    await page.goto("/hosts")
    await page.select_option("#import-form select[name=format]", "ansible")
    await page.fill("#import-form textarea[name=lines]", "[web\nweb-1 ansible_host=127.0.9.1\n")
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#import-error:has-text('line 1:')")
    await page.fill("#import-form textarea[name=lines]",
                    "[web]\nweb-[1:2] ansible_host=127.0.9.1\n[prod:children]\nweb\n")
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#page-notice:text-is('Imported 2 hosts.')")
    await page.wait_for_selector("#hosts tr[data-host='web-2']")
    status, host = await api.get("/api/hosts/web-1")
    assert status == 200
    assert sorted(host["groups"]) == ["prod", "web"]
