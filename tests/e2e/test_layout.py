"""The pages hold at laptop sizes, in English and in Chinese: no table breaks a word across
lines (short values stay on one line, long ones are cut with an ellipsis and keep the full
text as a title), no table is wider than its panel, and the dashboard gives the recent
releases the room they need. Saves screenshots of the dashboard at 1280 and 1920 wide."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo, wait_for
from tests.e2e.helpers import fleet_and_project

pytestmark = pytest.mark.e2e
SIZES = ((1280, 800), (1440, 900))

# Everything a table cell shows, checked the way a reader sees it: each word (a run of
# characters without spaces; CJK characters are words of their own) must sit on one line,
# and a cell whose text does not fit must be cut on purpose, with the full text as a title.
LAYOUT_PROBLEMS = """() => {
    const problems = [];
    const WORD = /[^\\s\\u2e80-\\u9fff\\u3000-\\u303f\\uff00-\\uffef]+/g;
    const visible = (node) => node.getClientRects().length > 0;
    const cells = document.querySelectorAll(
        'table td, table th, .vtable .cell, .vtable-head button');
    for (const cell of cells) {
        if (!visible(cell)) continue;
        const where = `${cell.tagName.toLowerCase()} "${cell.textContent.trim().slice(0, 40)}"`;
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.textContent.matchAll(WORD)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].filter((r) => r.width > 0)
                    .map((r) => Math.round(r.bottom)));
                if (lines.size > 1) problems.push(`"${match[0]}" broken across lines in ${where}`);
            }
        }
        for (const box of [cell, ...cell.querySelectorAll('.ellipsis')]) {
            if (box.scrollWidth <= box.clientWidth + 1) continue;
            const cut = getComputedStyle(box).textOverflow === 'ellipsis';
            if (!cut || !box.title) problems.push(`text overflows ${where} without a title`);
        }
    }
    for (const table of document.querySelectorAll('table, .vtable')) {
        if (!visible(table)) continue;
        const room = table.parentElement.clientWidth;
        if (table.offsetWidth > room + 1) {
            problems.push(`a table is ${table.offsetWidth}px wide in ${room}px`);
        }
    }
    for (const row of document.querySelectorAll('.vtable-head, .vrow')) {
        if (visible(row) && row.scrollWidth > row.clientWidth + 1) {
            problems.push(`a host table row is cut: ${row.scrollWidth}px in ${row.clientWidth}px`);
        }
    }
    return problems;
}"""

# Page → what shows that its data has arrived.
PAGES = {
    "/": "#recent tr:nth-child(3) td:nth-child(5) .state-badge",
    "/projects": "#projects tr td a",
    "/hosts": "#hosts tr td a",
    "/projects/app": "#history tr:nth-child(3) .state-badge",
    "/projects/app/release": "#groups details",
}


@pytest.fixture
async def history(api, make_fleet, tmp_path) -> list[int]:
    """Three hosts and a project with a few releases: two deploys, a rollback, and a
    deploy that fails in before_release (the longest stage name, with a reason)."""
    fleet = await make_fleet(3)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
    ids = []
    for ref in ("v1", "v2"):
        ids.append((await wait_for(api, (await deploy(api, ref))["id"]))["id"])
    status, rollback = await api.post(f"/api/releases/{ids[-1]}/rollback", {})
    assert status == 201, rollback
    ids.append((await wait_for(api, rollback["id"]))["id"])
    status, body = await api.put("/api/projects/app", {"hooks": {
        "before_release": "echo 'the service refused to start' >&2; exit 3"}})
    assert status == 200, body
    failed = await wait_for(api, (await deploy(api, "v3"))["id"])
    assert failed["state"] == "failed"
    ids.append(failed["id"])
    return ids


async def layout_problems(page, width: int, height: int, release_id: int) -> dict:
    await page.set_viewport_size({"width": width, "height": height})
    found = {}
    for path, ready in PAGES.items():
        await page.goto(path)
        await page.wait_for_selector(ready)
        found[path] = await page.evaluate(LAYOUT_PROBLEMS)
    await page.goto(f"/releases/{release_id}")
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    found["/releases"] = await page.evaluate(LAYOUT_PROBLEMS)
    return {path: problems for path, problems in found.items() if problems}


async def test_no_table_breaks_a_word_at_laptop_sizes_in_either_language(
        page, history, base_url):
    for locale in ("en_US", "zh_CN"):
        await page.context.add_cookies([{"name": "ferry_locale", "value": locale,
                                         "url": base_url}])
        for width, height in SIZES:
            assert await layout_problems(page, width, height, history[-1]) == {}, (
                locale, width, height)
        assert await page.get_attribute("html", "lang") == locale.replace("_", "-")


async def test_the_dashboard_gives_recent_releases_more_room_than_projects(
        page, history, artifacts):
    for width in (1280, 1920):
        await page.set_viewport_size({"width": width, "height": 900})
        await page.goto("/")
        await page.wait_for_selector(PAGES["/"])
        projects, recent = await page.evaluate("""() => [...document.querySelectorAll(
            '.dashboard-columns > .panel')].map((panel) => panel.offsetWidth)""")
        assert recent > projects, (width, projects, recent)
        await page.screenshot(path=str(artifacts / f"dashboard-{width}.png"), full_page=True)


@pytest.mark.parametrize("browser_locale, who", [("en-US", "admin (Admin)"),
                                                  ("zh-CN", "admin (管理员)")])
async def test_the_header_names_the_user_and_the_role_in_plain_words(page, browser_locale, who):
    await page.goto("/")
    assert await page.inner_text(".who") == who
