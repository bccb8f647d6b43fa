"""Release console benchmark: the release page of a running N-host release in headless
chromium.

    python -m bench.console --hosts 500

Starts a fleet of real SSH servers (its own process), the embedded database, Ferry's
services and web app in this process. The fleet stands in for other machines, so it runs
in its own session at a lower CPU priority (--fleet-nice, default 10; 0 makes its 500
servers and their commands compete with the browser as equals). Then it starts a
release to every host with a slow before_release hook so it is still running when the
page opens; opens the release page in Debian's chromium, signed in, and watches it
until the release ends (or --seconds).
Measures, in the page: the time from navigation start to the first render of the
snapshot (flowchart, table, progress; performance mark "ferry:first-render"), and every
main-thread task longer than 50 ms (PerformanceObserver "longtask"). Checks at the end
that the page shows the same counts as the API. Final line: JSON {"hosts",
"first_render_ms", "longest_task_ms", "long_tasks", "events_applied", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import tornado.httpserver
import tornado.netutil

from bench.harness import TERMINAL, ferry_on_fleet, make_repo
from server import make_app
from services import Services

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
PASSWORD = "bench-password"
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8",
                    "blink", "cc", "toplevel"]
WATCH = """
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.__longTasks.push({start: entry.startTime, duration: entry.duration});
  }
}).observe({type: "longtask", buffered: true});
"""


async def serve(services: Services) -> tuple[tornado.httpserver.HTTPServer, str]:
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    server = tornado.httpserver.HTTPServer(make_app(services),
                                           max_body_size=services.settings.max_body_bytes)
    server.add_sockets(sockets)
    return server, f"http://127.0.0.1:{sockets[0].getsockname()[1]}"


async def start_release(services: Services, args: argparse.Namespace) -> dict:
    user = await services.auth.user("admin")
    release = await services.releases.create(user, {
        "project": "console", "ref": "main",
        "strategy": {"batches": [args.batch], "parallel": args.parallel}})
    # Open the page while hosts are running, as someone joining mid-release would.
    while True:
        current = await services.releases.get(release["id"])
        counts = current["counts"]
        if counts.get("ok", 0) >= args.open_after_ok or current["state"] in TERMINAL:
            return current
        await asyncio.sleep(0.1)


async def watch_page(base_url: str, release_id: int, args: argparse.Namespace,
                     services: Services) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM,
                                                   args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=base_url,
                                            viewport={"width": 1440, "height": 1000})
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("input[name=name]", "admin")
        await page.fill("input[name=password]", PASSWORD)
        await page.click("section.login button[type=submit]")
        await page.wait_for_url(f"{base_url}/")
        await context.add_init_script(WATCH)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        cdp = None
        if args.profile:
            cdp = await context.new_cdp_session(page)
            await cdp.send("Profiler.enable")
            await cdp.send("Profiler.setSamplingInterval", {"interval": 1000})
            await cdp.send("Profiler.start")
        if args.trace:
            await browser.start_tracing(page=page, path=args.trace, categories=TRACE_CATEGORIES)
        opened = time.perf_counter()
        await page.goto(f"/releases/{release_id}")
        await page.wait_for_function("() => document.body.dataset.rendered === 'true'",
                                     timeout=30_000)
        first_render = await page.evaluate(
            "() => performance.getEntriesByName('ferry:first-render')[0].startTime")
        wall_first_render = time.perf_counter() - opened
        if args.screenshot:
            await page.screenshot(path=args.screenshot, full_page=True)
        deadline = time.monotonic() + args.seconds
        state = None
        while time.monotonic() < deadline:
            state = (await services.releases.get(release_id))["state"]
            if state in TERMINAL:
                break
            await asyncio.sleep(0.5)
        final = await services.releases.get(release_id)
        expected = {k: v for k, v in final["counts"].items() if v}
        try:
            await page.wait_for_function(
                "(expected) => { const c = window.ferryRelease.model.counts;"
                " return Object.entries(expected).every(([k, v]) => c[k] === v); }",
                arg=expected, timeout=15_000)
            consistent = True
        except Exception:
            consistent = False
        await page.wait_for_timeout(500)
        if cdp is not None:
            profile = await cdp.send("Profiler.stop")
            Path(args.profile).write_text(json.dumps(profile["profile"]))
        if args.trace:
            await browser.stop_tracing()
        tasks = await page.evaluate("() => window.__longTasks")
        marks = await page.evaluate("""() => Object.fromEntries(performance
            .getEntriesByType("mark").filter((m) => m.name.startsWith("ferry:"))
            .map((m) => [m.name.slice(6), Math.round(m.startTime)]))""")
        measures = await page.evaluate("""() => Object.fromEntries(performance
            .getEntriesByType("measure").filter((m) => m.name.startsWith("ferry:"))
            .map((m) => [m.name.slice(6), [Math.round(m.startTime), Math.round(m.duration)]]))""")
        resources = await page.evaluate("""() => Object.fromEntries(performance
            .getEntriesByType("resource").filter((r) => /api\\/releases|cytoscape\\./.test(r.name))
            .map((r) => [r.name.replace(/^.*\\//, ""),
                         [Math.round(r.startTime), Math.round(r.responseEnd)]]))""")
        applied = await page.evaluate("() => window.ferryRelease.model.lastSeq")
        stats = await page.evaluate("() => window.ferryRelease.stats")
        status = await page.get_attribute("#live-status", "data-status")
        await browser.close()
    return {"first_render_ms": round(first_render, 1),
            "first_render_wall_ms": round(wall_first_render * 1000, 1),
            "longest_task_ms": round(max((t["duration"] for t in tasks), default=0), 1),
            "long_tasks": len(tasks),
            "long_tasks_over_200ms": sum(1 for t in tasks if t["duration"] > 200),
            "marks_ms": marks, "measures_ms": measures, "resources_ms": resources,
            "tasks_ms": [[round(t["start"]), round(t["duration"])] for t in tasks],
            "events_applied": applied, "page_stats": stats, "transport": status,
            "page_errors": errors,
            "page_matches_api": consistent, "release_state": final["state"],
            "release_s": round((final.get("duration_ms") or 0) / 1000, 1),
            "counts": expected}


async def main(args: argparse.Namespace) -> dict:
    async with ferry_on_fleet(args.hosts, admin_password=PASSWORD, fleet_nice=args.fleet_nice,
                              cookie_secret="bench-console") as (services, root, _):
        make_repo(root / "repo", 0.05)
        await services.projects.create({
            "name": "console", "repo_url": f"file://{root / 'repo'}",
            "deploy_path": "/srv/console", "groups": ["bench"],
            "hooks": {"before_release": f'echo "release on $FERRY_HOST"\nsleep {args.hook_sleep}\n'
                                        'echo "\\033[32mready\\033[0m"\n'}})
        server, base_url = await serve(services)
        try:
            release = await start_release(services, args)
            result = await watch_page(base_url, release["id"], args, services)
        finally:
            server.stop()
            await services.events.close_clients()
    return {"hosts": args.hosts, "parallel": args.parallel, "batch": args.batch,
            "fleet_nice": args.fleet_nice,
            "target_first_render_ms": 2000, "target_longest_task_ms": 200, **result}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ferry release console benchmark")
    parser.add_argument("--hosts", type=int, default=500)
    parser.add_argument("--parallel", type=int, default=50)
    parser.add_argument("--batch", default="100%",
                        help="batch size, a count or a percentage (default: %(default)s)")
    parser.add_argument("--hook-sleep", type=float, default=1.0,
                        help="seconds each host's before_release hook sleeps")
    parser.add_argument("--open-after-ok", type=int, default=50,
                        help="open the page once this many hosts are done")
    parser.add_argument("--fleet-nice", type=int, default=10,
                        help="CPU niceness of the simulated hosts, which stand in for other "
                             "machines; 0 lets them compete with the browser as equals "
                             "(default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=300,
                        help="watch the page at most this long")
    parser.add_argument("--screenshot", default=None, help="save the first render here")
    parser.add_argument("--profile", default=None,
                        help="save a CPU profile of the page (.cpuprofile, DevTools) here")
    parser.add_argument("--trace", default=None,
                        help="save a performance trace of the page (DevTools JSON) here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit("bench.console needs Debian's chromium: apt-get install -y chromium")
    outcome = asyncio.run(main(arguments))
    print(json.dumps(outcome), flush=True)
