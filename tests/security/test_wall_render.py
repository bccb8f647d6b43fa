"""Host and group names are hostile text on the wall: markup, bidi and emoji are drawn
on the canvas as characters (fillText), never parsed as HTML."""

from __future__ import annotations

import asyncio
import json

import pytest

from handlers.wall import inline_json
from tests.e2e.conftest import (  # noqa: F401 (the browser fixtures, shared)
    artifacts,
    browser,
    browser_locale,
    chromium_path,
    context,
    page,
    page_watch,
)

pytestmark = pytest.mark.e2e
HOSTILE = ['<img src=x onerror="window.__pwned=1">', "主机-一号", "\u202eevil\u202c-rtl",
           "🚀 rocket", "</canvas><script>window.__pwned=2</script>"]


# The API refuses such names; they can only come from the database (older data, or written
# by another instance), which the wall re-reads every wall_hosts_refresh_s.
@pytest.mark.parametrize("settings_overrides", [{"wall_hosts_refresh_s": 0.2}])
async def test_hostile_host_and_group_names_are_drawn_as_text(page, services):  # noqa: F811
    await services.store.hosts.insert_many(
        [{"name": name, "groups": ["<b onmouseover=alert(1)>grp</b>"]} for name in HOSTILE])
    while True:                                    # the wall's next read of the registry
        if len((await services.wall.snapshot())["hosts"]) == len(HOSTILE):
            break
        await asyncio.sleep(0.05)
    await services.events.publish("wall", "release", {
        "release_id": 1, "project": "<i>p</i>", "environment": "production",
        "kind": "deploy", "ref": "<svg onload=alert(1)>", "sha": None, "state": "running",
        "total": len(HOSTILE), "counts": {"failed": len(HOSTILE)}, "created_by": "<u>x</u>",
        "started_at": None, "finished_at": None, "duration_ms": None,
        "hosts": {name: ["failed", "verify"] for name in HOSTILE}})
    await page.set_viewport_size({"width": 1920, "height": 1080})
    await page.goto("/wall")
    await page.wait_for_function("(n) => window.__wall && window.__wall.tiles.filter("
                                 "(t) => t.state === 'failed').length === n", arg=len(HOSTILE))
    drawn = await page.evaluate("window.__wall.tiles.map((t) => [t.name, t.label])")
    assert sorted(name for name, _ in drawn) == sorted(HOSTILE)
    for name, label in drawn:     # the text itself, whole or cut in the middle ("ab…yz")
        head, _, tail = label.partition("…")
        assert label == name or (name.startswith(head) and name.endswith(tail)), label
    assert await page.evaluate("window.__pwned") is None
    assert await page.locator("img, svg, b, i, u, script:not([type=module])").count() == 0
    assert "<svg onload=alert(1)>" in await page.text_content("#wall-running")


def test_the_snapshot_in_the_page_cannot_end_its_script_element():
    data = json.dumps({"hosts": [{"name": name} for name in [*HOSTILE, "a&b", "<!--"]]})
    inline = inline_json(data.encode())
    assert not {"<", ">", "&"} & set(inline)
    assert json.loads(inline) == json.loads(data)
