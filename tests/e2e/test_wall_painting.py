"""Where the wall's tiles are painted: in a worker, on the canvas the page hands over to
it; on the main thread where the browser cannot do that (an older TV's) or the worker
does not start. Every way shows every host's tile in its state's colour (read off a
screenshot, as a viewer would see it)."""

from __future__ import annotations

import base64

import pytest

from tests.deploykit import register_fleet
from tests.e2e.test_wall import TV, big_fleet_mid_release, open_wall, tiles
from tests.handlers.wallkit import make_link

pytestmark = pytest.mark.e2e

NO_OFFSCREEN = "delete HTMLCanvasElement.prototype.transferControlToOffscreen;"
# A worker whose script is missing: it fails after the canvas was handed to it.
MISSING_WORKER = """window.Worker = class extends Worker {
    constructor(url, options) { super("/static/js/wall/no-such-worker.js", options); } };"""
NEVER_DEPLOYED = (0x30, 0x36, 0x3D)   # COLORS.none in static/js/wall/draw.js

PIXELS = """async ([png, points]) => {
    const bytes = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
    const bitmap = await createImageBitmap(new Blob([bytes], {type: "image/png"}));
    const ctx = new OffscreenCanvas(bitmap.width, bitmap.height).getContext("2d");
    ctx.drawImage(bitmap, 0, 0);
    return points.map(([x, y]) => Array.from(ctx.getImageData(x, y, 1, 1).data.slice(0, 3)));
}"""


async def shown_colours(page, drawn: dict[str, dict]) -> dict[str, tuple]:
    """Each tile's colour on the screen, near its top-left corner (clear of its label)."""
    box = await page.locator("#wall-tiles").bounding_box()
    names = sorted(drawn)
    points = [[round(box["x"] + drawn[n]["x"] + 2), round(box["y"] + drawn[n]["y"] + 2)]
              for n in names]
    png = base64.b64encode(await page.screenshot()).decode()
    return dict(zip(names, map(tuple, await page.evaluate(PIXELS, [png, points])), strict=True))


def close(colour: tuple, wanted: tuple) -> bool:
    return all(abs(a - b) <= 3 for a, b in zip(colour, wanted, strict=True))


@pytest.mark.parametrize(("browser_lacks", "painted_on"), [
    (None, "worker"), (NO_OFFSCREEN, "main"), (MISSING_WORKER, "main")],
    ids=["in-a-worker", "without-offscreen-canvas", "when-the-worker-fails"])
async def test_every_tile_is_painted_in_its_state_colour(page, page_watch, api, make_fleet,
                                                        browser_lacks, painted_on):
    fleet = await make_fleet(6)
    await register_fleet(api, fleet)
    if browser_lacks:
        await page.add_init_script(browser_lacks)
        page_watch.allow("no-such-worker.js")
        page_watch.allow("404")
    await open_wall(page)
    await page.wait_for_function("(n) => window.__wall.tiles.length === n", arg=len(fleet.hosts))
    assert await page.evaluate("window.__wall.painter.where") == painted_on
    drawn = await tiles(page)
    assert sorted(drawn) == sorted(h.name for h in fleet.hosts)
    colours = await shown_colours(page, drawn)
    assert all(close(c, NEVER_DEPLOYED) for c in colours.values()), colours


async def test_the_worker_paints_tiles_in_the_pages_language(browser, base_url, api, services,
                                                             page_watch):

    wanted = await big_fleet_mid_release(services)
    link = await make_link(api)
    context = await browser.new_context(base_url=base_url, viewport=TV, locale="zh-CN")
    page = await context.new_page()
    page_watch.attach(page)
    await page.goto(link["path"])
    collapsed = "window.__wall && window.__wall.tiles.filter((t) => t.collapsed)"
    await page.wait_for_function(f"() => {collapsed}.length > 0")
    assert await page.evaluate("window.__wall.painter.where") == "worker"
    labels = await page.evaluate(f"{collapsed}.map((t) => t.label)")
    oks = sum(1 for state in wanted.values() if state == "ok")
    assert any(label.endswith(" 成功") for label in labels), labels
    assert sum(int(label.split()[0].replace(",", "")) for label in labels
               if label.endswith(" 成功")) == oks
    await context.close()
