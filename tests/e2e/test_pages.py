"""Pages in Chinese, strict CSP on every page, user values shown as text, API errors as
readable messages, and node_modules served only from the two dist folders."""

from __future__ import annotations

import pytest

from tests.deploykit import deploy, make_app_repo, register_fleet, register_project, wait_for
from tests.e2e.helpers import fleet_and_project, wait_for_release_state

pytestmark = pytest.mark.e2e
PAGES = ("/", "/hosts", "/projects", "/projects/app", "/projects/app/release")
NASTY = '<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2">'


@pytest.mark.parametrize("browser_locale", ["zh-CN"])
async def test_release_page_in_chinese(page, api, make_fleet, tmp_path):
    fleet = await make_fleet(2)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
    release = await deploy(api, "v1")
    await wait_for(api, release["id"])
    await page.goto(f"/releases/{release['id']}")
    assert await wait_for_release_state(page) == "succeeded"
    assert await page.get_attribute("html", "lang") == "zh-CN"
    assert "发布" in await page.inner_text("h1")
    assert await page.inner_text("#release-state") == "已成功"
    assert "流水线" in await page.inner_text(".flow-panel h2")
    assert await page.inner_text(".vtable-head button[data-sort='host']") == "主机"
    assert await page.inner_text("#progress-done") == "2 台主机中已完成 2 台"
    assert await page.inner_text("#host-rows .vrow .state-badge >> nth=0") == "成功"
    assert (await page.inner_text(".mainnav")).startswith("仪表盘\n项目\n主机")
    label = await page.evaluate(
        "() => window.ferryRelease.graph.cy.getElementById('local:checkout').data('label')")
    assert label.startswith("检出")

    # The switch in the page overrides Accept-Language, and back.
    await page.click(".langswitch button[value=en_US]")
    await page.wait_for_selector(".flow-panel h2:has-text('Pipeline')")
    assert await page.get_attribute("html", "lang") == "en-US"
    await page.wait_for_selector("#release-state:has-text('succeeded')")
    await page.click(".langswitch button[value=zh_CN]")
    await page.wait_for_selector(".flow-panel h2:has-text('流水线')")


async def test_every_page_has_a_strict_csp_and_escapes_user_values(page, api, make_fleet,
                                                                   tmp_path):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    await register_project(api, make_app_repo(tmp_path / "repo"), description=NASTY,
                           hooks={"after_release": f"echo '{NASTY}'"})
    release = await deploy(api, "v1")
    await wait_for(api, release["id"])
    for path in (*PAGES, f"/releases/{release['id']}"):
        response = await page.goto(path)
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp, path
        assert "unsafe-inline" not in csp
        html = await response.text()
        assert "<script>" not in html.replace('<script type="module" src=', "")
        assert " style=" not in html and "<style" not in html
        await page.wait_for_load_state("networkidle")
    await page.goto("/projects/app")
    await page.wait_for_selector("#project-description")
    assert await page.inner_text("#project-description") == NASTY
    await page.wait_for_function(
        "(text) => document.querySelector('#settings-form [name=description]').value === text",
        arg=NASTY)
    await page.goto(f"/releases/{release['id']}#host={fleet.hosts[1].name}")
    await page.wait_for_selector(f"#log .log-line:has-text('{NASTY}')")
    assert await page.locator("#log img, #log script").count() == 0
    assert await page.evaluate("() => window.__pwned") is None


async def test_api_errors_show_as_messages(page, api, page_watch, make_fleet, tmp_path):
    page_watch.allow("status of 400")
    page_watch.allow("status of 404")
    fleet = await make_fleet(1)
    await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
    await page.goto("/projects/app/release")
    await page.wait_for_selector("#ref-select option[value='v1']", state="attached")
    await page.fill("#ref-input", "--upload-pack=evil")
    await page.click("#start-release")
    error = page.locator("#page-error")
    await error.wait_for()
    text = await error.inner_text()
    assert "ref" in text and "Traceback" not in text

    response = await page.goto("/releases/999")
    assert response.status == 404
    assert "no release 999" in (await page.inner_text(".error .message")).lower()

    await page.goto("/hosts")
    await page.fill("#host-form input[name=name]", "web-1")
    await page.fill("#host-form input[name=address]", "not an address!")
    await page.click("#host-submit")
    await page.wait_for_selector("#page-error:has-text('address')")

    response = await page.goto("/projects/nope")
    assert response.status == 404
    assert "no project" in (await page.inner_text(".error .message")).lower()


async def test_vendor_files_come_only_from_the_dist_folders(page, base_url):
    ok = await page.request.get(f"{base_url}/vendor/cytoscape/cytoscape.esm.min.mjs")
    assert ok.status == 200
    assert ok.headers["content-type"].startswith("text/javascript")
    dagre = await page.request.get(f"{base_url}/vendor/cytoscape-dagre/cytoscape-dagre.min.mjs")
    assert dagre.status == 200
    for path in ("/vendor/cytoscape/../package.json", "/vendor/cytoscape/%2e%2e/package.json",
                 "/vendor/dagre/dagre.js", "/vendor/cytoscape-dagre/../../package.json"):
        response = await page.request.get(base_url + path)
        assert response.status in (403, 404), path
