"""The release page's rollback button says what it will do, and the rollback's own page
says where it comes from."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo, wait_for
from tests.e2e.helpers import fleet_and_project, wait_for_release_state

pytestmark = pytest.mark.e2e


async def test_rollback_asks_with_its_target_and_hosts_then_links_back(page, api, base_url,
                                                                       make_fleet, tmp_path):
    fleet = await make_fleet(2)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
    v1 = await wait_for(api, (await deploy(api, "v1"))["id"])
    v2 = await wait_for(api, (await deploy(api, "v2"))["id"])

    await page.goto(f"/releases/{v2['id']}")
    await page.click("#btn-rollback")
    await page.wait_for_selector("#confirm[open]")
    question = await page.inner_text("#confirm-text")
    assert question == (f"Roll back 2 hosts to release #{v1['id']} "
                        f"(v1 · {v1['sha'][:10]})?")
    await page.click("#confirm-ok")

    await page.wait_for_url(lambda url: url.startswith(f"{base_url}/releases/")
                            and not url.startswith(f"{base_url}/releases/{v2['id']}"))
    assert await wait_for_release_state(page) == "succeeded"
    meta = page.locator("#release-meta")
    assert "rollback of" in await meta.inner_text()
    assert await meta.locator(f"a[href='/releases/{v2['id']}']").count() == 1
    assert await meta.locator(f"a[href='/releases/{v1['id']}']").count() == 1
