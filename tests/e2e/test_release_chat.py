"""The chat beside the release flowchart, in a real browser against the real server:
messages arrive live on every page open on the release, user text is shown as text
(links as safe links), older history loads on scrolling up, a collapsed panel counts
what arrived, and refusals reach only their sender.

The tests share one Ferry and one finished release (its room only grows; each test looks
for its own messages)."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.deploykit import deploy_and_wait
from tests.e2e.chatpage import Pages, chat_texts, message, open_release, running_ferry, say

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ferry(tmp_path_factory, mongo_url, chromium_path):
    async with running_ferry(tmp_path_factory.mktemp("chat"), mongo_url, chromium_path,
                             hosts=1, chat_rate_burst=1000) as ferry:
        yield ferry


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def release(ferry) -> dict:
    """A finished release on a one-host fleet: its room exists, with Ferry's messages."""
    return await deploy_and_wait(ferry.api, "v1")


@pytest_asyncio.fixture(loop_scope="module")
async def pages(ferry):
    pages = Pages(ferry)
    yield pages
    await pages.check_and_close()


def room(release: dict) -> str:
    return f"/api/chat/release-{release['id']}/messages"


async def test_two_users_on_a_release_page_see_each_others_messages_live(pages, release):
    admin = await pages.new("admin")
    dora = await pages.new("dora", "deployer")
    await open_release(admin, release["id"])
    await open_release(dora, release["id"])

    await say(admin, "canary looks fine")
    seen = message(dora, "canary looks fine")
    await seen.wait_for()
    assert await seen.locator(".chat-user").inner_text() == "admin"
    assert await seen.locator(".chat-time").get_attribute("datetime")
    assert await admin.input_value("#chat-input") == ""

    await say(dora, "error rate up on web-3, hold it")
    seen = message(admin, "error rate up on web-3, hold it")
    await seen.wait_for()
    assert await seen.locator(".chat-user").inner_text() == "dora"
    assert await message(admin, "canary looks fine").count() == 1
    # Ferry's own messages are there too, marked as such.
    system = admin.locator("#chat-log .chat-msg[data-kind='system']")
    assert await system.count() >= 1
    assert await system.first.locator(".chat-user").inner_text() == "Ferry"


async def test_markup_shows_as_text_and_only_http_links_become_links(pages, ferry, release):
    page = await pages.new("admin")
    await open_release(page, release["id"])
    attack = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'
    link = "see https://example.com/a?b=1&c=<2>. not javascript:alert(1) nor data:text/html,x"
    for text in (attack, link):
        status, body = await ferry.api.post(room(release), {"text": text})
        assert status == 201, body

    shown = message(page, "<script>")
    await shown.wait_for()
    assert await shown.locator(".chat-text").inner_text() == attack
    await message(page, "see https://").wait_for()
    log = page.locator("#chat-log")
    assert await log.locator("script, img").count() == 0
    assert await page.evaluate("window.__pwned") is None
    links = log.locator(".chat-text a")
    assert await links.count() == 1
    assert await links.get_attribute("href") == "https://example.com/a?b=1&c="
    assert await links.get_attribute("rel") == "noopener noreferrer nofollow"
    assert await message(page, "see https://").locator(".chat-text").inner_text() == link


async def test_scrolling_up_loads_older_messages_in_order(pages, ferry, release):
    for n in range(1, 61):
        status, body = await ferry.api.post(room(release), {"text": f"history {n:02d}"})
        assert status == 201, body

    page = await pages.new("admin")
    await open_release(page, release["id"])
    texts = await chat_texts(page)
    assert texts[-1] == "history 60"
    assert "history 01" not in texts
    assert await page.locator("#chat-log").evaluate(
        "log => log.scrollTop + log.clientHeight >= log.scrollHeight - 2")

    await page.locator("#chat-log").evaluate("log => { log.scrollTop = 0; }")
    await message(page, "history 01").wait_for()
    texts = [text for text in await chat_texts(page) if text.startswith("history ")]
    assert texts == [f"history {n:02d}" for n in range(1, 61)]
    await page.locator("#chat-log .chat-start").wait_for()


async def test_a_collapsed_chat_counts_unread_messages(pages, ferry, release):
    erin = await ferry.user_api("erin", "viewer")
    page = await pages.new("admin")
    await open_release(page, release["id"])
    await page.click("#chat-toggle")
    assert await page.get_attribute("#chat-toggle", "aria-expanded") == "false"
    assert await page.locator("#chat-log").is_hidden()
    for text in ("unread one", "unread two"):
        status, body = await erin.post(room(release), {"text": text})
        assert status == 201, body

    await page.wait_for_function(
        "() => document.querySelector('#chat-unread').textContent === '2'")
    await page.click("#chat-toggle")
    assert await page.locator("#chat-unread").is_hidden()
    await message(page, "unread two").wait_for()   # open again (remembered for later pages)


async def test_too_long_messages_and_refused_commands_are_told_to_their_sender_inline(
        pages, release):
    pages.watch.allow("status of 400")   # the answers the test provokes, logged by chromium
    pages.watch.allow("status of 403")
    vic = await pages.new("vic", "viewer")
    admin = await pages.new("admin")
    await open_release(vic, release["id"])
    await open_release(admin, release["id"])

    await say(vic, "x" * 2001)
    error = vic.locator("#chat-error")
    await error.wait_for()
    assert "2000" in await error.inner_text()
    assert await vic.input_value("#chat-input") == "x" * 2001   # kept, to be shortened

    await say(vic, "/promote")
    await vic.wait_for_function(
        "() => document.querySelector('#chat-error').textContent.includes('deployer')")
    await say(vic, "visible to all")
    await message(admin, "visible to all").wait_for()
    assert await message(admin, "/promote").count() == 0
    assert "requires the deployer role" not in await admin.locator("#chat-panel").inner_text()


async def test_the_chat_sits_beside_the_flowchart_from_1280_to_1920_wide_and_collapses(
        pages, release, artifacts):
    page = await pages.new("admin")
    for width in (1280, 1920):
        await page.set_viewport_size({"width": width, "height": 900})
        await open_release(page, release["id"])
        flow = await page.locator(".flow-panel").bounding_box()
        chat = await page.locator("#chat-panel").bounding_box()
        assert chat["x"] >= flow["x"] + flow["width"], width        # beside, on the right
        assert abs(chat["y"] - flow["y"]) < 1 and abs(chat["height"] - flow["height"]) < 1
        assert chat["width"] >= 280, width
        assert await page.evaluate(
            "() => document.documentElement.scrollWidth <= window.innerWidth"), width

    await page.click("#chat-toggle")
    await page.wait_for_function(
        "(wide) => document.querySelector('.flow-panel').getBoundingClientRect().width > wide",
        arg=flow["width"] + 200)
    collapsed = await page.locator("#chat-panel").bounding_box()
    assert collapsed["width"] < 80
    await page.screenshot(path=str(artifacts / "release-chat-collapsed-1920.png"))
    await page.click("#chat-toggle")
