"""The release page stays live: a reload mid-release shows everything so far and goes on,
long-polling takes over when /ws is blocked, a canary pauses until promoted."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo
from tests.e2e.helpers import fleet_and_project, node_states, wait_for_nodes, wait_for_release_state

pytestmark = pytest.mark.e2e
SLOW_HOOK = 'echo "start $FERRY_HOST"\nsleep 1\necho "done $FERRY_HOST"\n'


async def all_events(api, topic: str) -> list[dict]:
    events, after = [], 0
    while True:
        status, body = await api.get(f"/api/events?topic={topic}&after={after}&wait=0")
        assert status == 200, body
        if not body["events"]:
            return events
        events.extend(body["events"])
        after = body["next"]


async def test_reload_mid_release_shows_everything_and_continues(page, api, make_fleet,
                                                                 tmp_path):
    fleet = await make_fleet(8)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"),
                            hooks={"before_release": SLOW_HOOK})
    release = await deploy(api, "v2", strategy={"parallel": 2})
    last = fleet.hosts[-1].name
    await page.goto(f"/releases/{release['id']}#host={last}")
    await wait_for_nodes(page, "ok", 2)
    assert await page.get_attribute("#release-state", "data-state") == "running"
    before = await node_states(page)

    await page.reload()
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    after = await node_states(page)
    assert list(after) == [host.name for host in fleet.hosts]
    done_before = [name for name, state in before.items() if state == "ok"]
    assert all(after[name] == "ok" for name in done_before), (before, after)
    assert await page.get_attribute("#release-state", "data-state") == "running"
    await page.wait_for_selector(f"#log-title:has-text('{last}')")

    # It goes on live, without another reload, to the end.
    assert await wait_for_release_state(page) == "succeeded"
    assert set((await node_states(page)).values()) == {"ok"}
    await page.wait_for_selector("#progress-done:has-text('8 of 8 hosts done')")

    # Nothing missing, nothing twice: the page applied every event of the topic, and the
    # log it shows is the stored one, line for line.
    events = await all_events(api, f"release:{release['id']}")
    await page.wait_for_function("(seq) => window.ferryRelease.model.lastSeq >= seq",
                                 arg=events[-1]["seq"])
    _, log = await api.get(f"/api/releases/{release['id']}/hosts/{last}/log")
    expected = [(line["n"], line["line"]) for line in log["lines"]]
    assert [n for n, _ in expected] == list(range(1, len(expected) + 1))
    await page.wait_for_function("(count) => document.querySelectorAll('#log .log-line')"
                                 ".length === count", arg=len(expected))
    shown = await page.evaluate("""() => [...document.querySelectorAll('#log .log-line')]
        .map(row => [Number(row.dataset.n), row.querySelector('.log-text').textContent])""")
    assert [tuple(row) for row in shown] == expected
    assert any(f"done {last}" in line for _, line in expected)
    stages = await page.evaluate("""() => [...document.querySelectorAll(
        '#host-rows .vrow:not([hidden]) .cell-stage')].map(cell => cell.textContent)""")
    assert stages and set(stages) == {"prune"}


async def test_long_polling_when_the_websocket_is_blocked(page, api, page_watch, make_fleet,
                                                          tmp_path):
    page_watch.allow("WebSocket")
    fleet = await make_fleet(4)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"),
                            hooks={"before_release": "sleep 0.5"})
    # Playwright's page.route() does not see WebSocket handshakes; route_web_socket does:
    # closing the route refuses the connection before it opens.
    await page.route("**/ws", lambda route: route.abort())
    await page.route_web_socket("**/ws", lambda ws: ws.close())
    release = await deploy(api, "v1", strategy={"parallel": 1})
    await page.goto(f"/releases/{release['id']}")
    await page.wait_for_selector("#live-status[data-status='polling']")
    assert await wait_for_release_state(page) == "succeeded"
    assert set((await node_states(page)).values()) == {"ok"}
    assert await page.get_attribute("#live-status", "data-status") == "polling"


async def test_canary_pauses_until_promoted(page, context, api, base_url, page_watch,
                                            make_fleet, tmp_path):
    fleet = await make_fleet(4)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
    await page.goto("/projects/app/release")
    await page.wait_for_selector("#ref-select option[value='v3']", state="attached")
    await page.select_option("#ref-select", "v3")
    await page.check("input[name=preset][value=canary]")
    await page.fill("input[name=canary]", "1")
    assert await page.inner_text("#plan-summary") == "4 hosts in 2 batches"
    await page.click("#start-release")
    await page.wait_for_url(f"{base_url}/releases/*")

    assert await wait_for_release_state(page, ("paused",)) == "paused"
    banner = await page.inner_text("#pause-banner")
    assert "Paused after batch 1" in banner
    states = await node_states(page)
    assert states[fleet.hosts[0].name] == "ok"
    assert {states[h.name] for h in fleet.hosts[1:]} == {"pending"}
    assert await page.is_visible("#btn-promote")

    # While it is paused the project is locked: a second release gets a readable 409.
    page_watch.allow("409")
    other = await context.new_page()
    await other.goto("/projects/app/release")
    await other.wait_for_selector("#ref-select option[value='v2']", state="attached")
    await other.select_option("#ref-select", "v2")
    await other.click("#start-release")
    await other.wait_for_selector("#page-error:has-text('locked by release')")
    await other.close()

    # Promote asks first; "No" changes nothing, "Yes" continues the release.
    await page.click("#btn-promote")
    await page.click("#confirm button[value=cancel]")
    assert await page.get_attribute("#release-state", "data-state") == "paused"
    await page.click("#btn-promote")
    await page.click("#confirm-ok")
    assert await wait_for_release_state(page) == "succeeded"
    assert set((await node_states(page)).values()) == {"ok"}
    assert await page.is_hidden("#pause-banner")
    assert await page.is_hidden("#btn-promote")
