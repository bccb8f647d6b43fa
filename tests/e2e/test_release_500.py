"""The release page of a 500-host release while it runs: hosts grouped per batch (big
batches in groups of 50) with live counts, readable, nothing overlapping; the cancel
button asks first and stops it. Saves test-artifacts/release-500-hosts.png."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo, register_project
from tests.e2e.helpers import node_font_px, overlapping_nodes, wait_for_release_state

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
HOSTS = 500


@pytest.mark.timeout(600)
async def test_release_page_of_500_hosts(page, api, services, make_fleet, tmp_path, artifacts):
    fleet = await make_fleet(HOSTS)
    for host in fleet.hosts:            # registered directly: this test is about the page
        await services.hosts.create({"name": host.name, "address": host.address,
                                     "port": host.port, "user": "deploy",
                                     "key_path": str(fleet.client_key_path),
                                     "groups": ["web"]})
        await services.ssh.trust_host_key(host.address, host.port, host.public_key)
    await register_project(api, make_app_repo(tmp_path / "repo"),
                           hooks={"before_release": "sleep 3"})
    # A pause after batch 2 keeps batch 3 pending however slow the machine is.
    release = await deploy(api, "v1", strategy={"batches": [20, 100, "100%"], "parallel": 40,
                                                "pause_after": [2]})

    await page.goto(f"/releases/{release['id']}")
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    # Batch 1 (20 hosts) done, batch 2 under way or done (then paused).
    await page.wait_for_function(
        "() => (window.ferryRelease.model.counts.ok || 0) >= 40", timeout=300_000)
    groups = await page.evaluate("""() => window.ferryRelease.graph.cy.nodes('.group')
        .map(n => n.data('label'))""")
    assert len(groups) == 1 + 2 + 8                  # 20 | 100 | 380 in groups of 50
    assert groups[0].startswith("Batch 1/3 · 20 hosts\nok 20")
    assert groups[3].startswith("Batch 3/3 · hosts 1\u201350 of 380\npending 50")
    assert await overlapping_nodes(page) == []
    assert await node_font_px(page) >= 9
    counts = await page.inner_text("#counts")
    assert "ok" in counts and "pending" in counts
    await page.screenshot(path=str(artifacts / "release-500-hosts.png"), full_page=True)

    # A group node filters the table to its hosts.
    await page.evaluate("() => window.ferryRelease.graph.cy.$('#group\\\\:1').emit('tap')")
    await page.wait_for_selector("#host-shown:has-text('20 / 500')")
    await page.click("#group-filter")
    await page.wait_for_function("() => document.querySelector('#host-shown').textContent === ''")

    await page.click("#btn-cancel")
    await page.click("#confirm-ok")
    assert await wait_for_release_state(page) == "cancelled"
