"""The go/no-go vote on the release page, on a real fleet: a canary paused for a vote
shows the tally, the voters and the deadline; two users vote go from their own pages and
both pages follow the release to its end. A viewer sees the vote without the buttons,
and the Chinese page labels the chat and the vote in Chinese.

The tests share one Ferry and one paused canary: the tests that only look at the vote
come first; the last one decides it."""

from __future__ import annotations

import pytest
import pytest_asyncio

from tests.deploykit import deploy, wait_for
from tests.e2e.chatpage import Pages, open_release, running_ferry, say
from tests.e2e.helpers import wait_for_release_state
from tests.handlers.chatkit import canary_with_vote, wait_for_vote

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def ferry(tmp_path_factory, mongo_url, chromium_path):
    async with running_ferry(tmp_path_factory.mktemp("vote"), mongo_url, chromium_path,
                             hosts=2) as ferry:
        yield ferry


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def paused(ferry) -> dict:
    """A canary (`batches [1, "100%"]`, pause after 1, vote min_go 2 with veto) paused
    after its first host, its vote open."""
    release = await deploy(ferry.api, "v2", strategy=canary_with_vote(timeout_s=3600))
    paused = await wait_for(ferry.api, release["id"], ("paused",))
    await wait_for_vote(ferry.api, release["id"])
    return paused


@pytest_asyncio.fixture(loop_scope="module")
async def pages(ferry):
    pages = Pages(ferry)
    yield pages
    await pages.check_and_close()


async def go_count(page, text: str) -> None:
    await page.wait_for_function(
        "(text) => document.querySelector('#vote-go-count').textContent === text", arg=text)


async def test_a_viewer_sees_the_tally_but_no_vote_buttons(pages, paused):
    vic = await pages.new("vic", "viewer")
    await open_release(vic, paused["id"])
    await vic.locator("#vote-panel").wait_for()
    await go_count(vic, "0 / 2")
    assert await vic.locator("#vote-go").is_hidden()
    assert await vic.locator("#vote-nogo").is_hidden()
    assert await vic.locator("#chat-input").is_visible()   # a viewer may still chat


async def test_the_chinese_page_labels_the_chat_and_the_vote(pages, paused):
    page = await pages.new("admin", locale="zh-CN")
    await open_release(page, paused["id"])
    await page.locator("#vote-panel").wait_for()
    assert await page.inner_text("#chat-toggle .chat-title") == "聊天"
    assert await page.inner_text("#chat-form button[type=submit]") == "发送"
    assert "放行/叫停投票" in await page.inner_text("#vote-panel h2")
    assert await page.inner_text("#vote-go") == "放行"
    assert await page.inner_text("#vote-nogo") == "叫停"
    assert "需要 2 票放行" in await page.inner_text("#vote-panel .vote-rules")
    assert (await page.inner_text("#vote-deadline")).startswith("剩余时间")


async def test_two_go_votes_from_two_pages_continue_the_canary_on_both(
        pages, ferry, paused, artifacts):
    page = await pages.new("admin")
    dora = await pages.new("dora", "deployer")
    await open_release(page, paused["id"])
    await open_release(dora, paused["id"])
    for each in (page, dora):
        await each.locator("#vote-panel").wait_for()
        await go_count(each, "0 / 2")
    assert "2 go votes needed" in await page.inner_text("#vote-panel .vote-rules")
    assert "one no-go cancels" in await page.inner_text("#vote-panel .vote-rules")
    assert (await page.inner_text("#vote-deadline")).startswith("Time left: ")
    link = page.locator("#vote-panel a.vote-big")
    assert await link.get_attribute("href") == f"/releases/{paused['id']}/vote"

    await page.fill("#vote-comment", "canary looks fine")
    await page.click("#vote-go")
    for each in (page, dora):
        await go_count(each, "1 / 2")
        voter = each.locator("#vote-voters li[data-user='admin']")
        assert await voter.locator(".vote-choice").inner_text() == "Go"
        assert await voter.locator(".vote-comment").inner_text() == "canary looks fine"
    assert await page.get_attribute("#vote-go", "aria-pressed") == "true"
    assert (await ferry.api.get(f"/api/releases/{paused['id']}"))[1]["state"] == "paused"
    assert await page.get_attribute("#release-state", "data-state") == "paused"

    await say(page, "one more go and it ships")
    await dora.locator("#chat-log .chat-text", has_text="one more go").wait_for()
    await page.screenshot(path=str(artifacts / "release-chat-and-vote.png"), full_page=True)

    await dora.click("#vote-go")
    for each in (page, dora):
        assert await wait_for_release_state(each) == "succeeded"
        await each.wait_for_function(
            "() => document.querySelector('#vote-outcome').dataset.result === 'passed'")
        assert await each.locator("#vote-go").is_hidden()
    assert "the release continues" in await dora.inner_text("#vote-outcome")
