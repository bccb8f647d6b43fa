"""A before_release hook failing on one host: its node turns red with the reason, its log
shows the hook's output (ANSI colours rendered, markup shown as text)."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo
from tests.e2e.helpers import (
    COLORS,
    click_element,
    click_node,
    fleet_and_project,
    node_color,
    node_states,
    wait_for_release_state,
)

pytestmark = pytest.mark.e2e
HOOK = """echo "checking $FERRY_HOST"
printf '\\033[31m<script>window.__pwned = 1</script> red text\\033[0m\\n'
if [ "$FERRY_HOST" = host-3 ]; then echo "refusing to release on $FERRY_HOST"; exit 3; fi
"""


async def test_failing_hook_turns_its_host_red_with_reason_and_log(page, api, base_url,
                                                                   make_fleet, tmp_path):
    fleet = await make_fleet(6)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))

    # The hook editor on the project page.
    await page.goto("/projects/app")
    await page.wait_for_function(
        "() => document.querySelector('#settings-form [name=repo_url]').value !== ''")
    await page.fill("textarea[name=hook_before_release]", HOOK)
    await page.click("#settings-form button[type=submit]")
    await page.wait_for_selector("#page-notice:has-text('Saved.')")
    _, project = await api.get("/api/projects/app")
    assert project["hooks"]["before_release"] == HOOK

    await page.goto("/projects/app/release")
    await page.wait_for_selector("#ref-select option[value='v3']", state="attached")
    await page.select_option("#ref-select", "v3")
    await page.click("#start-release")
    await page.wait_for_url(f"{base_url}/releases/*")
    assert await wait_for_release_state(page) == "failed"

    failed = fleet.hosts[3].name
    states = await node_states(page)
    assert states.pop(failed) == "failed"
    assert set(states.values()) == {"ok"}
    assert await node_color(page, failed) == COLORS["failed"]

    # Its row in the table, found with the "failed only" filter, carries the reason.
    await page.select_option("#host-filter", "failed")
    rows = page.locator("#host-rows .vrow:not([hidden])")
    await page.wait_for_function(
        "() => document.querySelectorAll('#host-rows .vrow:not([hidden])').length === 1")
    assert await rows.locator(".cell-host").inner_text() == failed
    reason = await rows.locator(".cell-reason").inner_text()
    assert "before_release" in reason and "3" in reason
    assert await rows.locator(".cell-stage").inner_text() == "before_release"

    # Clicking its node opens its log: the hook's output, colours rendered, markup as text.
    await click_node(page, failed)
    await page.wait_for_selector(f"#log-title:has-text('{failed}')")
    await page.wait_for_selector("#log .log-line:has-text('refusing to release on host-3')")
    red = page.locator("#log .log-line .ansi-fg-1").first
    assert await red.inner_text() == "<script>window.__pwned = 1</script> red text"
    assert await page.locator("#log script").count() == 0
    assert await page.evaluate("() => window.__pwned") is None
    assert "#host=host-3" in page.url

    # Search narrows the log to matching lines.
    await page.fill("#log-search", "refusing")
    await page.wait_for_selector("#log-matches:has-text('1 match')")
    assert await page.locator("#log .log-line").count() == 1
    assert await page.locator("#log mark").inner_text() == "refusing"


async def test_failing_build_opens_the_build_log_with_its_output(page, api, make_fleet,
                                                                 tmp_path):
    fleet = await make_fleet(3)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"), hooks={
        "after_checkout": 'echo "src/app.c:12: error: <b>expected</b> \';\'"\nexit 2\n'})
    release = await deploy(api, "v1")

    await page.goto(f"/releases/{release['id']}")
    assert await wait_for_release_state(page) == "failed"
    # The build failed before any host: its log is what opens.
    await page.wait_for_selector("#log-title:has-text('Build log')")
    await page.wait_for_selector("#log .log-line:has-text('src/app.c:12: error')")
    assert await page.locator("#log b").count() == 0

    # A host's log, then back to the build log by clicking a local stage in the chart.
    await click_node(page, fleet.hosts[0].name)
    await page.wait_for_selector(f"#log-title:has-text('{fleet.hosts[0].name}')")
    await click_element(page, "local:after_checkout")
    await page.wait_for_selector("#log-title:has-text('Build log')")
    await page.wait_for_selector("#log .log-line:has-text('<b>expected</b>')")
    assert "#host=_local" in page.url
