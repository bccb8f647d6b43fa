"""The big-screen wall in Debian's chromium against the real server, database and a
real fleet: every host a tile on a canvas (read through `window.__wall`, the drawn
model), live through a release, through a wall link without signing in, by
long-polling when /ws is blocked, greyed out while the server is down."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from services.embedded_db import free_port
from services.settings import Settings
from tests.conftest import ROOT
from tests.deploykit import deploy, register_fleet, register_project, wait_for
from tests.e2e.conftest import WATCH_CSP
from tests.handlers.wallkit import make_link

pytestmark = pytest.mark.e2e
TV = {"width": 1920, "height": 1080}


def held_hook(gate: Path) -> str:
    """A hook that holds its host running until the test creates `gate` (at most 60 s):
    no race with how fast the machine deploys."""
    return f"for i in $(seq 600); do [ -e {gate} ] && exit 0; sleep 0.1; done\n"

FAILING_HOOK = '[ "$FERRY_HOST" = host-3 ] && { echo "no release here"; exit 3; }; sleep 0.5\n'


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.replace(wall_link_recheck_s=1.0)


async def tiles(page) -> dict[str, dict]:
    """Host name → the tile drawn for it (state, stage, label, box)."""
    return await page.evaluate("""() => Object.fromEntries(window.__wall.tiles
        .filter((t) => t.name !== undefined).map((t) => [t.name, t]))""")


async def wait_for_tiles(page, state: str, count: int, timeout: float = 90_000) -> None:
    await page.wait_for_function(
        """([state, count]) => window.__wall && window.__wall.tiles
            .filter((t) => t.state === state && !t.collapsed).length >= count""",
        arg=[state, count], timeout=timeout)


async def open_wall(page, path: str = "/wall") -> None:
    await page.set_viewport_size(TV)
    await page.goto(path)
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")


async def test_the_wall_shows_every_host_of_a_20_host_fleet(page, api, make_fleet,
                                                            artifacts):
    fleet = await make_fleet(20)
    await register_fleet(api, fleet)
    await open_wall(page)
    drawn = await tiles(page)
    assert sorted(drawn) == sorted(h.name for h in fleet.hosts)
    assert all(tile["label"] == name for name, tile in drawn.items())   # readable names
    assert all(tile["w"] >= 150 for tile in drawn.values())             # big on a TV
    assert await page.evaluate("document.documentElement.scrollHeight") <= TV["height"]
    await page.screenshot(path=str(artifacts / "wall-20-hosts.png"))


async def test_a_release_turns_its_tiles_running_then_ok_live(page, api, make_fleet,
                                                              app_repo, tmp_path):
    fleet = await make_fleet(6)
    await register_fleet(api, fleet)
    gate = tmp_path / "let-the-hosts-finish"
    await register_project(api, app_repo, hooks={"before_release": held_hook(gate)})
    await open_wall(page)
    release = await deploy(api, "v2")
    await wait_for_tiles(page, "running", 1)
    running = [t for t in (await tiles(page)).values() if t["state"] == "running"]
    assert running[0]["stage"]
    await page.wait_for_selector(f".run-card[data-release='{release['id']}']")
    gate.touch()
    await wait_for_tiles(page, "ok", 6)
    await page.wait_for_selector(f".recent-item[data-release='{release['id']}']"
                                 "[data-state='succeeded']")


async def test_a_failing_hook_turns_one_tile_red_with_its_name_readable(page, api,
                                                                        make_fleet, app_repo,
                                                                        artifacts):
    fleet = await make_fleet(6)
    await register_fleet(api, fleet)
    await register_project(api, app_repo, hooks={"before_release": FAILING_HOOK})
    await open_wall(page)
    release = await deploy(api, "v2")
    await wait_for(api, release["id"])
    await wait_for_tiles(page, "failed", 1)
    await wait_for_tiles(page, "ok", 5)
    drawn = await tiles(page)
    assert drawn["host-3"]["state"] == "failed" and drawn["host-3"]["label"] == "host-3"
    first = min(drawn.values(), key=lambda t: (t["y"], t["x"]))
    assert first["name"] == "host-3"                                    # problems first
    await page.screenshot(path=str(artifacts / "wall-failed-host.png"))


async def test_with_the_websocket_blocked_the_wall_updates_by_long_polling(page, api,
                                                                          make_fleet,
                                                                          app_repo):
    fleet = await make_fleet(4)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    # page.route() does not see WebSocket handshakes; route_web_socket does: closing the
    # route refuses the connection before it opens.
    await page.route("**/ws", lambda route: route.abort())
    await page.route_web_socket("**/ws", lambda ws: ws.close())
    await open_wall(page)
    await page.wait_for_selector("#wall-status[data-status='polling']")
    await deploy(api, "v2")
    await wait_for_tiles(page, "ok", 4)
    assert await page.get_attribute("#wall-status", "data-status") == "polling"


async def test_a_wall_link_opens_the_wall_without_signing_in_until_revoked(
        browser, base_url, api, make_fleet, page_watch):
    fleet = await make_fleet(3)
    await register_fleet(api, fleet)
    link = await make_link(api)
    context = await browser.new_context(base_url=base_url, viewport=TV)
    await context.add_init_script(WATCH_CSP)
    page = await context.new_page()
    page_watch.attach(page)
    page_watch.allow("401")        # the revoked stream's last answers
    page_watch.allow("410")
    await page.goto(link["path"])
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    assert page.url == f"{base_url}/wall"                 # the token left the URL
    assert sorted(await tiles(page)) == sorted(h.name for h in fleet.hosts)
    # The same screen can read nothing else.
    for path in ("/api/releases", "/api/hosts", "/api/releases/1/hosts/host-0/log",
                 "/api/wall/links", "/api/events?topic=wall&after=0&wait=0"):
        response = await page.request.get(path, max_redirects=0)
        assert response.status in (401, 403), (path, response.status)
    response = await page.request.get("/", max_redirects=0)
    assert response.status == 302 and "/login" in response.headers["location"]
    await api.delete(f"/api/wall/links/{link['id']}")
    await page.wait_for_selector("#wall-overlay:has-text('this link was revoked')")
    assert await page.evaluate("document.body.classList.contains('stale')")
    await context.close()


async def test_the_wall_speaks_chinese(browser, base_url, api, make_fleet, page_watch):
    fleet = await make_fleet(2)
    await register_fleet(api, fleet)
    link = await make_link(api)
    context = await browser.new_context(base_url=base_url, viewport=TV, locale="zh-CN")
    page = await context.new_page()
    page_watch.attach(page)
    await page.goto(link["path"])
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    assert await page.text_content(".wall-title") == "机群看板"
    assert "当前没有正在进行的发布" in await page.text_content("#wall-running")
    await context.close()


class ServerProcess:
    """Ferry's server.py as its own process on a fixed port, stopped and started again."""

    def __init__(self, settings: Settings, data_dir: Path) -> None:
        self.port = free_port()
        self.args = [sys.executable, str(ROOT / "server.py"), "--port", str(self.port),
                     "--data-dir", str(data_dir), "--mongo-url", settings.mongo_url,
                     "--db-name", f"t_{uuid.uuid4().hex[:12]}", "--admin-password",
                     "admin-password", "--log-level", "WARNING"]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    async def start(self) -> None:
        import tornado.httpclient

        self.process = subprocess.Popen(self.args, cwd=ROOT, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, env=os.environ.copy())
        client = tornado.httpclient.AsyncHTTPClient()
        for _ in range(600):
            try:
                await client.fetch(self.url + "/login", request_timeout=2)
                return
            except Exception:
                assert self.process.poll() is None, "server.py exited"
                await asyncio.sleep(0.1)
        raise AssertionError("server.py did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)
            self.process = None


async def test_stopping_the_server_greys_the_wall_and_restarting_brings_it_back(
        browser, settings, tmp_path, page_watch):
    server = ServerProcess(settings, tmp_path / "server")
    await server.start()
    try:
        context = await browser.new_context(base_url=server.url, viewport=TV)
        page = await context.new_page()
        page_watch.attach(page)
        page_watch.allow("ERR_CONNECTION_REFUSED")
        page_watch.allow("WebSocket")
        await page.goto("/login")
        await page.fill("input[name=name]", "admin")
        await page.fill("input[name=password]", "admin-password")
        await page.click("section.login button[type=submit]")
        await page.wait_for_url(f"{server.url}/")
        await open_wall(page)
        await page.wait_for_selector("#wall-status[data-status='live']")
        await page.evaluate("window.__sameDocument = true")
        server.stop()
        await page.wait_for_selector("#wall-overlay:has-text('reconnecting')")
        assert await page.evaluate("document.body.classList.contains('stale')")
        await page.screenshot(path=str(ROOT / "test-artifacts" / "wall-reconnecting.png"))
        await server.start()
        # Back by WebSocket, or by long-polling when the socket failed twice meanwhile
        # (the client tries the socket again later).
        await page.wait_for_selector("#wall-status[data-status='live'], "
                                     "#wall-status[data-status='polling']", timeout=60_000)
        assert not await page.evaluate("document.body.classList.contains('stale')")
        assert await page.is_hidden("#wall-overlay")
        assert await page.evaluate("window.__sameDocument === true")   # no reload
        await context.close()
    finally:
        server.stop()


async def big_fleet_mid_release(services, count: int = 2000) -> dict[str, str]:
    """`count` hosts in 8 groups, mid-release: most ok, some running, a few failed or
    interrupted (host states told on the wall topic, as a release's record tells them)."""
    groups = ["api", "batch", "cache", "db", "edge", "queue", "search", "web"]
    names = [f"node-{i:04d}" for i in range(count)]
    await services.hosts.create_many(
        [{"name": name, "address": "127.0.0.1", "groups": [groups[i % len(groups)]]}
         for i, name in enumerate(names)])
    wanted = {}
    for i, name in enumerate(names):
        group = groups[i % len(groups)]
        if group in ("web", "api") and i % 40 == 8:
            wanted[name] = "running"
        elif group == "web" and i % 97 == 0:
            wanted[name] = "failed"
        elif group == "db" and i % 331 == 3:
            wanted[name] = "interrupted"
        elif group == "web" and i > count // 2:
            wanted[name] = "pending"
        else:
            wanted[name] = "ok"
    counts = {state: list(wanted.values()).count(state) for state in set(wanted.values())}
    await services.events.publish("wall", "release", {
        "release_id": 7, "project": "shop", "environment": "production", "kind": "deploy",
        "ref": "v42", "sha": "0" * 40, "state": "running", "total": count, "counts": counts,
        "created_by": "admin", "started_at": None, "finished_at": None, "duration_ms": None,
        "hosts": {name: [state, "before_release" if state == "running" else "verify"]
                  for name, state in wanted.items()}})
    return wanted


async def test_2000_hosts_collapse_what_is_ok_and_show_every_problem(page, services,
                                                                     artifacts):
    wanted = await big_fleet_mid_release(services)
    await open_wall(page)
    problems = {n: s for n, s in wanted.items() if s in ("running", "failed", "interrupted")}
    await page.wait_for_function("(n) => window.__wall.tiles.filter((t) => !t.collapsed)"
                                 ".length === n", arg=len(problems))
    drawn = await tiles(page)
    assert {n: t["state"] for n, t in drawn.items()} == problems
    collapsed = await page.evaluate("window.__wall.tiles.filter((t) => t.collapsed)")
    assert sum(t["count"] for t in collapsed) == len(wanted) - len(problems)
    assert await page.evaluate("window.__wall.pages") == 1
    await page.screenshot(path=str(artifacts / "wall-2000-hosts.png"))


async def test_only_problems_shows_just_the_problems(page, services, artifacts):
    wanted = await big_fleet_mid_release(services)
    await open_wall(page, "/wall?only=problems")
    problems = {n for n, s in wanted.items() if s in ("running", "failed", "interrupted")}
    await page.wait_for_function("(n) => window.__wall.tiles.length === n", arg=len(problems))
    assert set(await tiles(page)) == problems
    await page.screenshot(path=str(artifacts / "wall-only-problems.png"))


async def test_page_auto_cycles_pages_when_even_the_smallest_tiles_do_not_fit(page, services):
    await services.hosts.create_many(
        [{"name": f"n-{i:04d}", "address": "127.0.0.1", "groups": ["web"]}
         for i in range(1999)])
    await page.set_viewport_size({"width": 800, "height": 500})
    await page.goto("/wall?page=auto&every=3")
    await page.wait_for_function("() => document.body.dataset.rendered === 'true'")
    pages = await page.evaluate("window.__wall.pages")
    assert pages >= 2
    first = await page.evaluate("window.__wall.tiles[0].name")
    await page.wait_for_function("() => window.__wall.page === 1")
    assert await page.evaluate("window.__wall.tiles[0].name") != first
    assert await page.text_content("#wall-page") == f"page 2 of {pages}"


def test_the_wall_bench_runs_end_to_end_at_a_tiny_size(tmp_path):
    trace = tmp_path / "wall.trace.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.wall", "--hosts", "3", "--parallel", "3",
         "--hook-sleep", "0", "--trace", str(trace), "--minutes", "0.05"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["page_matches_api"] is True and figures["release_state"] == "succeeded"
    assert figures["release_s"] > 0
    starts = figures["soak_release_starts_ms"]
    assert len(starts) == figures["releases"] - 1 >= 1 and starts == sorted(starts)
    assert len(figures["soak_outcomes"]) == len(starts)
    assert all(set(outcome) >= {"state"} for outcome in figures["soak_outcomes"])
    assert figures["first_render_ms"] > 0 and "events_applied" in figures
    assert figures["page_errors"] == []
    assert figures["tiles_painted_on"] == "worker" and figures["workers_watched"] == 1
    assert trace.stat().st_size > 0 and figures["traced_tasks_ms"] is not None
    assert figures["traced_longest_task_ms"] is not None
    shares = figures["cpu_shares"]
    assert {"ferry", "database", "fleet", "browser"} <= set(shares)
    assert shares["main_thread_cpu_s"] > 0 and isinstance(figures["long_tasks_cpu"], list)
