"""Helpers for the browser tests: set-up through the API where a test is not about it,
and reading the release page's state (graph nodes, table, log)."""

from __future__ import annotations

from tests.deploykit import register_fleet, register_project

TERMINAL = ("succeeded", "failed", "cancelled", "rolled_back", "interrupted")
COLORS = {"ok": "rgb(31,157,85)", "failed": "rgb(214,69,69)", "pending": "rgb(228,231,235)",
          "running": "rgb(43,123,214)"}


async def fleet_and_project(api, fleet, repo, **project) -> None:
    """Register the fleet's hosts (keys scanned and trusted) and a project, by the API."""
    await register_fleet(api, fleet)
    await register_project(api, repo, **project)


async def node_states(page) -> dict[str, str]:
    """Host name → state of each host node of the flowchart."""
    return await page.evaluate("""() => {
        const out = {};
        window.ferryRelease.graph.cy.nodes('.host').forEach(n => {
            out[n.data('host')] = n.data('state'); });
        return out; }""")


async def node_color(page, host: str) -> str:
    color = await page.evaluate("""(id) => window.ferryRelease.graph.cy.getElementById(id)
        .pstyle('background-color').strValue""", f"host:{host}")
    return color.replace(" ", "")


async def wait_for_nodes(page, state: str, count: int, timeout: float = 90_000) -> None:
    """Until `count` host nodes of the flowchart are in `state`."""
    await page.wait_for_function(
        """([state, count]) => {
            const r = window.ferryRelease;
            if (!r) return false;
            return r.graph.cy.nodes('.host').filter(n => n.data('state') === state).length
                >= count; }""", arg=[state, count], timeout=timeout)


async def wait_for_release_state(page, states: tuple[str, ...] = TERMINAL,
                                 timeout: float = 90_000) -> str:
    await page.wait_for_function(
        "(states) => states.includes(document.querySelector('#release-state').dataset.state)",
        arg=list(states), timeout=timeout)
    return await page.get_attribute("#release-state", "data-state")


async def click_node(page, host: str) -> None:
    """Click a host's node on the flowchart canvas, where the user would."""
    await click_element(page, f"host:{host}")


async def click_element(page, element_id: str) -> None:
    """Click a flowchart node (by its id, e.g. "local:checkout") where the user would."""
    await page.locator("#flow").scroll_into_view_if_needed()
    point = await page.evaluate("""(id) => {
        const cy = window.ferryRelease.graph.cy;
        const node = cy.getElementById(id);
        const box = cy.container().getBoundingClientRect();
        const p = node.renderedPosition();
        return {x: box.left + p.x, y: box.top + p.y}; }""", element_id)
    await page.mouse.click(point["x"], point["y"])




async def overlapping_nodes(page) -> list[tuple[str, str]]:
    """Pairs of flowchart nodes whose boxes overlap (none, in a readable chart); a batch's
    box holds its hosts, so only nodes without children are compared."""
    return await page.evaluate("""() => {
        const boxes = window.ferryRelease.graph.cy.nodes(':childless')
            .map(n => [n.id(), n.boundingBox()]);
        const pairs = [];
        for (let i = 0; i < boxes.length; i++) {
            for (let j = i + 1; j < boxes.length; j++) {
                const [a, p] = boxes[i], [b, q] = boxes[j];
                if (p.x1 < q.x2 && q.x1 < p.x2 && p.y1 < q.y2 && q.y1 < p.y2) pairs.push([a, b]);
            }
        }
        return pairs; }""")


async def node_font_px(page) -> float:
    """The smallest on-screen font size of node labels at the current zoom."""
    return await page.evaluate("""() => {
        const cy = window.ferryRelease.graph.cy;
        return Math.min(...cy.nodes().map(n => n.numericStyle('font-size'))) * cy.zoom(); }""")
