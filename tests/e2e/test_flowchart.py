"""The release flowchart explains itself: every host sits in the box of its batch, the
boxes are joined by arrows that never cross a host, the picture does not move while states
change, and local stages skipped because the artifact was reused say which release built
it. Saves screenshots of 20- and 200-host releases at 1280 and 1920 pixels wide."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo, register_project, wait_for
from tests.e2e.helpers import (
    fleet_and_project,
    node_font_px,
    overlapping_nodes,
    wait_for_release_state,
)

pytestmark = pytest.mark.e2e

# Problems of the chart, as sentences: a host outside its batch's box, a box with no
# arrow in, an arrow through a host's box.
CHART_PROBLEMS = """() => {
    const { graph, model } = window.ferryRelease;
    const cy = graph.cy;
    const problems = [];
    const inside = (b, p) => b.x1 >= p.x1 && b.x2 <= p.x2 && b.y1 >= p.y1 && b.y2 <= p.y2;
    cy.nodes('.host').forEach((node) => {
        const run = model.hosts.get(node.data('host'));
        const box = node.parent();
        if (box.empty() || box.data('batch') !== run.batch) {
            problems.push(`${node.id()} is not in the box of batch ${run.batch}`);
        } else if (!inside(node.boundingBox(), box.boundingBox())) {
            problems.push(`${node.id()} sticks out of ${box.id()}`);
        } else if (box.incomers('edge').empty()) {
            problems.push(`${box.id()} has no arrow in`);
        }
    });
    // Does the segment a-b cross the box (shrunk by a pixel)? Liang-Barsky clipping.
    const crosses = (a, b, box) => {
        const [x1, x2, y1, y2] = [box.x1 + 1, box.x2 - 1, box.y1 + 1, box.y2 - 1];
        const dx = b.x - a.x, dy = b.y - a.y;
        let t0 = 0, t1 = 1;
        for (const [p, q] of [[-dx, a.x - x1], [dx, x2 - a.x], [-dy, a.y - y1],
                              [dy, y2 - a.y]]) {
            if (p === 0) { if (q < 0) return false; continue; }
            const r = q / p;
            if (p < 0) { if (r > t1) return false; if (r > t0) t0 = r; }
            else { if (r < t0) return false; if (r < t1) t1 = r; }
        }
        return t0 < t1;
    };
    const hosts = cy.nodes('.host').map((n) => [n.id(), n.boundingBox({ includeLabels: false })]);
    cy.edges().forEach((edge) => {
        const points = [edge.sourceEndpoint(), ...(edge.segmentPoints() || []),
                        edge.targetEndpoint()];
        for (let i = 1; i < points.length; i++) {
            for (const [id, box] of hosts) {
                if (crosses(points[i - 1], points[i], box)) {
                    problems.push(`${edge.id()} runs through ${id}`);
                }
            }
        }
    });
    const boxes = cy.nodes('.batch').length;
    const batches = model.batches.length;
    if (boxes !== batches) problems.push(`${boxes} boxes for ${batches} batches`);
    return problems;
}"""

POSITIONS = """() => {
    const out = {};
    window.ferryRelease.graph.cy.nodes().forEach((n) => {
        const p = n.position(); out[n.id()] = [Math.round(p.x), Math.round(p.y)]; });
    return out;
}"""


async def open_release(page, release_id: int, width: int) -> None:
    await page.set_viewport_size({"width": width, "height": 900})
    await page.goto(f"/releases/{release_id}")
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")


async def assert_readable_chart(page) -> None:
    assert await page.evaluate(CHART_PROBLEMS) == []
    assert await overlapping_nodes(page) == []
    assert await node_font_px(page) >= 9


async def test_a_20_host_release_shows_each_batch_as_a_box_joined_by_arrows(
        page, api, make_fleet, tmp_path, artifacts):
    fleet = await make_fleet(20)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"),
                            hooks={"before_release": "sleep 1"})
    release = await deploy(api, "v1", strategy={"batches": [2, 8, "100%"], "parallel": 10})

    await open_release(page, release["id"], 1280)
    await assert_readable_chart(page)
    before = await page.evaluate(POSITIONS)
    assert await wait_for_release_state(page) == "succeeded"
    # States changed all the way to the end; nothing moved.
    assert await page.evaluate(POSITIONS) == before
    await assert_readable_chart(page)
    await page.screenshot(path=str(artifacts / "flowchart-20-hosts-1280.png"), full_page=True)

    await open_release(page, release["id"], 1920)
    await assert_readable_chart(page)
    await page.screenshot(path=str(artifacts / "flowchart-20-hosts-1920.png"), full_page=True)


@pytest.mark.slow
@pytest.mark.timeout(400)
async def test_a_200_host_release_keeps_every_host_in_its_batch_box(
        page, api, services, make_fleet, tmp_path, artifacts):
    fleet = await make_fleet(200)
    for host in fleet.hosts:            # registered directly: this test is about the page
        await services.hosts.create({"name": host.name, "address": host.address,
                                     "port": host.port, "user": "deploy",
                                     "key_path": str(fleet.client_key_path),
                                     "groups": ["web"]})
        await services.ssh.trust_host_key(host.address, host.port, host.public_key)
    await register_project(api, make_app_repo(tmp_path / "repo"))
    release = await deploy(api, "v1", strategy={"batches": [20, "100%"], "parallel": 20})

    await open_release(page, release["id"], 1280)
    assert await page.evaluate("() => window.ferryRelease.graph.cy.nodes('.host').length") == 200
    await assert_readable_chart(page)
    await page.wait_for_function(
        "() => (window.ferryRelease.model.counts.ok || 0) >= 20", timeout=300_000)
    await page.screenshot(path=str(artifacts / "flowchart-200-hosts-1280.png"), full_page=True)

    await open_release(page, release["id"], 1920)
    await assert_readable_chart(page)
    await page.screenshot(path=str(artifacts / "flowchart-200-hosts-1920.png"), full_page=True)
    status, _ = await api.post(f"/api/releases/{release['id']}/cancel")
    assert status in (202, 409)         # 409: it has ended already
    await wait_for(api, release["id"], timeout=120)


async def test_stages_skipped_for_a_reused_artifact_name_the_release_that_built_it(
        page, api, make_fleet, tmp_path):
    fleet = await make_fleet(2)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"),
                            hooks={"after_checkout": "echo built"})
    first = await wait_for(api, (await deploy(api, "v1"))["id"])
    second = await wait_for(api, (await deploy(api, "v1"))["id"])
    assert first["state"] == second["state"] == "succeeded"

    reason = f"artifact cached from release #{first['id']}"
    for stage in ("checkout", "after_checkout", "package"):
        entry = second["local"][stage]
        assert entry["state"] == "skipped", stage
        assert entry["reason"] == reason and entry["cached_from"] == first["id"], entry
    status, log = await api.get(f"/api/releases/{second['id']}/hosts/_local/log")
    assert status == 200
    assert any(reason in line["line"] for line in log["lines"]), log

    await open_release(page, second["id"], 1440)
    label = await page.evaluate("() => window.ferryRelease.graph.cy"
                                ".getElementById('local:after_checkout').data('label')")
    assert label == f"after_checkout\nskipped — {reason}"
    await page.click("#log-local")
    await page.wait_for_selector(f"#log .log-line:has-text('{reason}')")
