"""The whole path through the pages: hosts imported and their keys confirmed, a project
created, a release started from the form, every host's node turning ok (20 hosts)."""

from __future__ import annotations

import pytest

from tests.deploykit import make_app_repo
from tests.e2e.helpers import (
    COLORS,
    node_color,
    node_font_px,
    node_states,
    overlapping_nodes,
    wait_for_nodes,
    wait_for_release_state,
)

pytestmark = pytest.mark.e2e
HOSTS = 20


async def test_hosts_project_and_release_through_the_pages(page, base_url, make_fleet, tmp_path,
                                                           artifacts):
    fleet = await make_fleet(HOSTS)
    repo = make_app_repo(tmp_path / "repo")

    # Hosts: import all twenty at once, then scan their keys and confirm the fingerprints.
    response = await page.goto("/hosts")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    lines = "\n".join(f"{h.name} {h.address}:{h.port} deploy web" for h in fleet.hosts)
    await page.fill("#import-form textarea[name=lines]", lines)
    await page.fill("#import-form input[name=key_path]", str(fleet.client_key_path))
    await page.click("#import-form button[type=submit]")
    await page.wait_for_selector("#page-notice:has-text('Imported 20 hosts.')")
    assert await page.locator("#hosts tr").count() == HOSTS
    await page.click("#scan-untrusted")
    await page.wait_for_function("() => document.querySelectorAll('#scan-rows tr').length === 20")
    for host in fleet.hosts:
        row = page.locator(f"#scan-rows tr[data-host='{host.name}']")
        assert await row.locator(".fingerprint").inner_text() == host.fingerprint
    await page.click("#trust-all")
    await page.wait_for_selector("#page-notice:has-text('Trusted 20 keys.')")
    await page.wait_for_function(
        "() => document.querySelectorAll('#hosts .key-ok').length === 20")

    # A project, through the projects page.
    await page.goto("/projects")
    form = page.locator("#project-form")
    await form.locator("input[name=name]").fill("app")
    await form.locator("input[name=repo_url]").fill(repo.url)
    await form.locator("input[name=deploy_path]").fill("/srv/app")
    await form.locator("input[name=groups]").fill("web")
    await form.locator("button[type=submit]").click()
    await page.wait_for_url(f"{base_url}/projects/app")
    await page.wait_for_selector("#refs tr[data-ref='v2']")

    # The release form: ref with its subject and author, all hosts of the group, commits.
    await page.click("a:has-text('New release')")
    await page.wait_for_url(f"{base_url}/projects/app/release")
    await page.wait_for_selector("#ref-select option[value='v2']", state="attached")
    await page.select_option("#ref-select", "v2")
    option = await page.locator("#ref-select option[value='v2']").inner_text()
    assert "Release v2" in option and "Test" in option
    await page.wait_for_selector("#changes-title:has-text('recent commits of v2')")
    assert await page.locator("#changes tr").count() == 2          # v2 and v1
    assert await page.inner_text("#host-count") == "20 selected"
    await page.fill("input[name=parallel]", "20")
    await page.click("#start-release")
    await page.wait_for_url(f"{base_url}/releases/*")

    # The release page: every host's node turns ok, coloured green.
    await wait_for_nodes(page, "ok", HOSTS)
    assert await wait_for_release_state(page) == "succeeded"
    states = await node_states(page)
    assert states == {h.name: "ok" for h in fleet.hosts}
    assert await node_color(page, fleet.hosts[7].name) == COLORS["ok"]
    await page.wait_for_selector("#progress-done:has-text('20 of 20 hosts done')")
    assert await page.inner_text(".count[data-state='ok'] b") == "20"
    for stage in ("checkout", "package"):
        assert await page.evaluate(
            "(id) => window.ferryRelease.graph.cy.getElementById(id).data('state')",
            f"local:{stage}") == "ok"
    assert await overlapping_nodes(page) == []
    assert await node_font_px(page) >= 9
    await page.wait_for_timeout(200)
    await page.screenshot(path=str(artifacts / "release-20-hosts.png"), full_page=True)

    # The dashboard lists it with its outcome; the project page has it in its history.
    await page.goto("/")
    await page.wait_for_selector("#recent tr:has-text('succeeded')")
    await page.goto("/projects/app")
    await page.wait_for_selector("#history tr:has-text('v2')")
