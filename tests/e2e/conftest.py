"""Browser fixtures: Playwright's async API driving Debian's chromium against the real
server of the `base_url` fixture, signed in as the admin through the login form.

Every page a test opens is watched: JavaScript errors and Content-Security-Policy
violations fail the test when it ends.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("FERRY_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts"
ADMIN_PASSWORD = "admin-password"  # what the admin_token fixture sets

# Records CSP violations in the page, for the watcher to read.
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.fail(f"browser tests need Debian's chromium at {CHROMIUM}: run "
                    "`apt-get install -y chromium` (as root), then run the tests again",
                    pytrace=False)
    return CHROMIUM


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


class PageWatch:
    """JavaScript errors and console errors seen on a page."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.allowed: list[str] = []

    def allow(self, fragment: str) -> None:
        """An error message containing `fragment` is expected by the test."""
        self.allowed.append(fragment)

    def attach(self, page) -> None:
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        page.on("console", lambda message: self.errors.append(
            f"console: {message.text}") if message.type == "error" else None)

    def check(self) -> None:
        problems = [e for e in self.errors if not any(a in e for a in self.allowed)]
        assert not problems, "\n".join(problems)


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium_path), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@pytest.fixture
def browser_locale() -> str:
    """The browser's language (Accept-Language); override to test another one."""
    return "en-US"


@pytest.fixture
def page_watch() -> PageWatch:
    return PageWatch()


@pytest.fixture
async def context(browser, base_url: str, admin_token: str, browser_locale: str,
                  page_watch: PageWatch) -> AsyncIterator:
    """A browser context signed in as the admin through the login page."""
    context = await browser.new_context(base_url=base_url, locale=browser_locale,
                                        viewport={"width": 1440, "height": 1000})
    context.set_default_timeout(30_000)
    await context.add_init_script(WATCH_CSP)
    context.on("page", page_watch.attach)
    page = await context.new_page()
    await page.goto("/login")
    await page.fill("input[name=name]", "admin")
    await page.fill("input[name=password]", ADMIN_PASSWORD)
    await page.click("section.login button[type=submit]")
    await page.wait_for_url(f"{base_url}/")
    await page.close()
    yield context
    await context.close()


@pytest.fixture
async def page(context, page_watch: PageWatch) -> AsyncIterator:
    page = await context.new_page()
    yield page
    violations = await page.evaluate("window.__cspViolations || []")
    assert not violations, f"Content-Security-Policy violations: {violations}"
    page_watch.check()
