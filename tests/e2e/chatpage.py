"""A Ferry a test module shares between its browser tests of the release page's chat and
vote (server, database, fleet, browser and signed-in users are made once per module, as
they are slow to make and the tests only add to them), and reading the chat panel.

Each test gets its own pages (`Pages`), watched like the `page` fixture's: script errors
and Content-Security-Policy violations fail the test."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pymongo
import tornado.httpserver
import tornado.netutil

from server import make_app
from services import Services
from services.settings import Settings
from services.store import Store
from tests.conftest import Api, make_settings
from tests.deploykit import make_app_repo
from tests.e2e.conftest import ADMIN_PASSWORD, CHROMIUM_ARGS, WATCH_CSP, PageWatch
from tests.e2e.helpers import fleet_and_project


class Ferry:
    """One running Ferry with a registered fleet and project, and a browser."""

    def __init__(self, services: Services, base_url: str, api: Api, fleet, browser) -> None:
        self.services = services
        self.base_url = base_url
        self.api = api
        self.fleet = fleet
        self.browser = browser
        self.contexts: dict[tuple[str, str], object] = {}

    async def user_api(self, name: str, role: str) -> Api:
        """An API client signed in (by token) as user `name`, created with `role`."""
        user = await self.ensure_user(name, role)
        return Api(self.base_url, await self.services.auth.create_token(user, "tests"))

    async def ensure_user(self, name: str, role: str):
        user = await self.services.auth.check_password(name, f"{name}-password")
        if user is None:
            user = await self.services.auth.create_user(name, f"{name}-password", role)
        return user

    async def context(self, name: str, role: str = "deployer", locale: str = "en-US"):
        """A browser context signed in as `name` through the login form (made once)."""
        key = (name, locale)
        if key not in self.contexts:
            password = ADMIN_PASSWORD if name == "admin" else f"{name}-password"
            if name != "admin":
                await self.ensure_user(name, role)
            context = await self.browser.new_context(
                base_url=self.base_url, locale=locale, viewport={"width": 1440, "height": 1000})
            context.set_default_timeout(30_000)
            await context.add_init_script(WATCH_CSP)
            page = await context.new_page()
            await page.goto("/login")
            await page.fill("input[name=name]", name)
            await page.fill("input[name=password]", password)
            await page.click("section.login button[type=submit]")
            await page.wait_for_url(f"{self.base_url}/")
            await page.close()
            self.contexts[key] = context
        return self.contexts[key]


@contextlib.asynccontextmanager
async def running_ferry(tmp_path: Path, mongo_url: str, chromium: Path, *, hosts: int,
                        **overrides) -> AsyncIterator[Ferry]:
    """Ferry on a real server and database, `hosts` fleet hosts and a project "app" (repo
    with v1, v2, v3) registered, and a headless chromium."""
    from playwright.async_api import async_playwright

    from fleet.simulator import Fleet

    settings: Settings = make_settings(tmp_path, mongo_url).replace(**overrides)
    services = Services(settings, Store(settings.mongo_url, settings.db_name))
    await services.open()
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(services),
                                           max_body_size=settings.max_body_bytes)
    server.add_sockets(sockets)
    base_url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}"
    try:
        await services.auth.ensure_admin(ADMIN_PASSWORD)
        admin = await services.auth.check_password("admin", ADMIN_PASSWORD)
        api = Api(base_url, await services.auth.create_token(admin, "tests"))
        async with Fleet(tmp_path / "fleet", hosts) as fleet, async_playwright() as playwright:
            await fleet_and_project(api, fleet, make_app_repo(tmp_path / "repo"))
            browser = await playwright.chromium.launch(executable_path=str(chromium),
                                                       args=CHROMIUM_ARGS)
            try:
                yield Ferry(services, base_url, api, fleet, browser)
            finally:
                await browser.close()
    finally:
        server.stop()
        await services.events.close_clients()
        await server.close_all_connections()
        await services.close()
        cleanup = pymongo.AsyncMongoClient(settings.mongo_url)
        await cleanup.drop_database(settings.db_name)
        await cleanup.close()


class Pages:
    """The pages one test opens, as any user; checked and closed when the test ends."""

    def __init__(self, ferry: Ferry) -> None:
        self.ferry = ferry
        self.watch = PageWatch()
        self.opened: list = []

    async def new(self, name: str = "admin", role: str = "deployer", locale: str = "en-US"):
        page = await (await self.ferry.context(name, role, locale)).new_page()
        self.watch.attach(page)
        self.opened.append(page)
        return page

    async def check_and_close(self) -> None:
        try:
            for page in self.opened:
                violations = await page.evaluate("window.__cspViolations || []")
                assert not violations, f"Content-Security-Policy violations: {violations}"
            self.watch.check()
        finally:
            for page in self.opened:
                await page.close()


async def open_release(page, release_id: int) -> None:
    """The release page, with its chat loaded and following the room live."""
    await page.goto(f"/releases/{release_id}")
    await page.wait_for_selector("#chat-panel[data-ready='true']")


async def say(page, text: str) -> None:
    """Type a message in the chat box and send it with Enter."""
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


def message(page, text: str):
    """The chat messages (a locator) whose text contains `text`."""
    return page.locator("#chat-log .chat-msg").filter(
        has=page.locator(".chat-text", has_text=text))


async def chat_texts(page) -> list[str]:
    return await page.locator("#chat-log .chat-msg .chat-text").all_inner_texts()
