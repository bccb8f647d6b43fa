"""The big-screen vote page in Debian's chromium against the real server, database and
a real fleet: a canary paused on a vote, votes cast through the API show up live, the
outcome shows large once decided; through a wall link without signing in (from the
wall's "vote open" line), with no chat text when the link was made without it; in
Chinese."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, register_fleet, register_project, wait_for
from tests.e2e.conftest import WATCH_CSP
from tests.handlers.chatkit import canary_with_vote, user_api, wait_for_vote

pytestmark = pytest.mark.e2e
TV = {"width": 1920, "height": 1080}
SECRET_CHAT = "error rate on web-3 looks odd"


async def paused_on_a_vote(api, make_fleet, app_repo) -> dict:
    """A 2-host canary paused after its first host, with an open vote (2 go needed)."""
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    release = await deploy(api, "v2", strategy=canary_with_vote())
    await wait_for(api, release["id"], ("paused",))
    await wait_for_vote(api, release["id"])
    return release


async def open_screen(page, path: str) -> None:
    await page.set_viewport_size(TV)
    await page.goto(path)
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")


async def test_the_vote_screen_follows_votes_live_and_shows_the_outcome_large(
        page, api, services, base_url, make_fleet, app_repo, artifacts):
    release = await paused_on_a_vote(api, make_fleet, app_repo)
    dora = await user_api(services, base_url, "dora", "deployer")
    await open_screen(page, f"/releases/{release['id']}/vote")
    assert await page.text_content("#count-go") == "0/2"
    assert "1 ok" in await page.text_content("#vote-canary")
    await api.post(f"/api/releases/{release['id']}/vote",
                   {"choice": "go", "comment": "canary looks fine"})
    await api.post(f"/api/chat/release-{release['id']}/messages", {"text": SECRET_CHAT})
    await page.wait_for_selector("#count-go:text-is('1/2')")
    await page.wait_for_selector("#vote-voters li[data-user='admin'][data-choice='go']"
                                 ":has-text('canary looks fine')")
    await page.wait_for_selector(f"#vote-chat li:has-text('{SECRET_CHAT}')")
    assert await page.is_hidden("#vote-outcome")
    assert await page.evaluate("document.documentElement.scrollHeight") <= TV["height"]
    await page.screenshot(path=str(artifacts / "vote-screen-open.png"))
    await dora.post(f"/api/releases/{release['id']}/vote", {"choice": "go"})
    await page.wait_for_selector("#vote-outcome[data-state='passed']")
    assert await page.text_content("#outcome-word") == "PASSED"
    word_px = await page.evaluate(
        "parseFloat(getComputedStyle(document.querySelector('#outcome-word')).fontSize)")
    assert word_px >= 150                                  # readable from across a room
    await wait_for(api, release["id"])
    await page.wait_for_function("() => document.body.dataset.release_state === 'succeeded'")
    assert "2 ok" in await page.text_content("#vote-canary")
    await page.screenshot(path=str(artifacts / "vote-screen-passed.png"))


async def test_a_wall_link_without_chat_opens_the_vote_screen_from_the_wall_and_no_chat_text(
        browser, base_url, api, make_fleet, app_repo, page_watch, artifacts):
    release = await paused_on_a_vote(api, make_fleet, app_repo)
    await api.post(f"/api/chat/release-{release['id']}/messages", {"text": SECRET_CHAT})
    await api.post(f"/api/releases/{release['id']}/vote",
                   {"choice": "go", "comment": "canary looks fine"})
    status, link = await api.post("/api/wall/links", {"name": "ops TV", "show_chat": False})
    assert status == 201
    context = await browser.new_context(base_url=base_url, viewport=TV)
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    page_watch.attach(page)
    await page.goto(link["path"])                          # a TV, never signed in
    vote_link = page.locator(f".run-card[data-release='{release['id']}'] a.run-vote")
    await vote_link.wait_for()
    assert "1/2" in await vote_link.text_content()
    await vote_link.click()
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    assert page.url == f"{base_url}/releases/{release['id']}/vote"
    await page.wait_for_selector("#vote-voters li[data-user='admin'][data-choice='go']")
    assert "Chat is not shown" in await page.text_content("#vote-chat")
    html = await page.content()
    assert SECRET_CHAT not in html and "canary looks fine" not in html
    response = await page.request.get(f"/api/chat/release-{release['id']}/messages")
    assert response.status == 401
    await api.post(f"/api/releases/{release['id']}/cancel")
    await page.wait_for_selector("#vote-outcome[data-how='override']")
    assert SECRET_CHAT not in await page.content()
    await page.screenshot(path=str(artifacts / "vote-screen-wall-link-override.png"))
    await context.close()


async def test_the_vote_screen_speaks_chinese(browser, base_url, api, make_fleet, app_repo,
                                              page_watch):
    release = await paused_on_a_vote(api, make_fleet, app_repo)
    status, link = await api.post("/api/wall/links", {"name": "电视", "show_chat": True})
    assert status == 201
    context = await browser.new_context(base_url=base_url, viewport=TV, locale="zh-CN")
    page = await context.new_page()
    page_watch.attach(page)
    await open_screen(page, f"/releases/{release['id']}/vote?key={link['token']}")
    assert await page.text_content(".vote-bar[data-choice='go'] .bar-label") == "放行"
    assert await page.text_content(".vote-bar[data-choice='no_go'] .bar-label") == "叫停"
    assert (await page.text_content("#vote-question")).startswith(f"继续发布 #{release['id']}")
    assert "1 台成功" in await page.text_content("#vote-canary")
    await api.post(f"/api/releases/{release['id']}/vote", {"choice": "no_go"})
    await page.wait_for_selector("#outcome-word:text-is('未通过')")
    await context.close()


async def test_with_its_stream_down_the_vote_screen_greys_out_under_reconnecting(
        page, api, make_fleet, app_repo, page_watch):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    release = await deploy(api, "v1")
    await wait_for(api, release["id"])
    page_watch.allow("Failed to load resource")
    await page.route_web_socket("**/vote/ws", lambda ws: ws.close())
    await page.route("**/vote/events*", lambda route: route.abort())
    await open_screen(page, f"/releases/{release['id']}/vote")
    await page.wait_for_selector("#vote-overlay:has-text('reconnecting…')")
    await page.wait_for_function("() => document.body.classList.contains('stale')")
    assert "No vote on this release yet" in await page.text_content("#vote-question")
