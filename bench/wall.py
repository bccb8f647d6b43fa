"""Wall benchmark: the big-screen wall in headless chromium while a release to N hosts runs.

    python -m bench.wall --hosts 2000 [--minutes 3]

Starts a fleet of real SSH servers (its own process, in a session of its own: it stands
in for other machines and gets a share of the CPU as one would; --fleet-nice lowers it
further), the embedded database, Ferry's services and web
app in this process; spreads the hosts over 8 racks (host groups); creates a wall link
and opens it in Debian's chromium at 1920x1080, as a TV would, just after a release to
every host starts. Measures in the page: navigation start → first render of the
snapshot (performance mark "ferry:first-render"), every main-thread task over 50 ms
(PerformanceObserver "longtask"), the wall events applied; at the end, whether the
page's host states equal GET /api/wall's. With --minutes, keeps the wall open that
long while releases run back to back, and reports the JS heap (after a forced GC; the
page's and its drawing worker's, bench/page_heap.py) at the first render, at the end,
and once the first release is done and after every release of the soak
(`js_heap_series_mb`). With --trace, records a Chrome performance trace and lists the
page's long tasks with the CPU time its main thread had in each (bench/page_trace.py).
Over the whole run, soak included, a sampler (bench/cpu_timeline.py) reads who had the
machine's CPUs during each long task (`long_tasks_cpu`: Ferry, its database, the fleet,
the browser; the page's main thread on a CPU and waiting for one) and over the run
(`cpu_shares`).
Final line: JSON {"hosts", "first_render_ms", "longest_task_ms", "events_applied",
"page_matches_api", ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

from bench.console import CHROMIUM, CHROMIUM_ARGS, WATCH, serve
from bench.cpu_split import keep_off, parse_cpus, pinned_browser
from bench.cpu_timeline import CpuTimeline
from bench.harness import TERMINAL, bench_setup, make_repo
from bench.page_heap import PageHeap
from bench.page_trace import CATEGORIES, long_tasks
from bench.server_probes import LoopLag, ServerSteps
from services import Services

PASSWORD = "bench-password"
SSH_TIMEOUT_S = 60.0
RACKS = 8
PAGE_STATES = """() => Object.fromEntries([...window.__wall.model.hosts.values()]
    .map((h) => [h.name, h.state || "none"]))"""

# Where the first render's time went: the page's HTML (the /wall?key= redirect included)
# and the snapshot, as the browser saw them (server time + transfer), in ms from
# navigation start; the rest is the page's own work.
TIMING = """() => {
    const nav = performance.getEntriesByType("navigation")[0];
    const api = performance.getEntriesByType("resource").find((r) => r.name.endsWith("/api/wall"));
    const r = (x) => Math.round(x);
    return {redirect_end: r(nav.redirectEnd), html_request_start: r(nav.requestStart),
            html_response_start: r(nav.responseStart), html_response_end: r(nav.responseEnd),
            dom_content_loaded: r(nav.domContentLoadedEventEnd),
            snapshot_request_start: api ? r(api.requestStart) : null,
            snapshot_response_start: api ? r(api.responseStart) : null,
            snapshot_response_end: api ? r(api.responseEnd) : null};
}"""


async def spread_over_racks(services: Services) -> None:
    """Each host in a rack group first (the wall groups by it), then "bench"; through
    the host service, as a user's edit would (the wall hears of it at once)."""
    names = [doc["name"] async for doc in services.store.hosts.find({}, {"name": 1})]
    for i, name in enumerate(sorted(names)):
        await services.hosts.update(name, {"groups": [f"rack-{i % RACKS}", "bench"]})


async def wall_project(services: Services, root: Path, hook_sleep: float) -> None:
    """The project every host is released to (a small repository, a before_release hook
    that sleeps `hook_sleep` s), with the hosts spread over the racks."""
    make_repo(root / "repo", 0.05)
    await services.projects.create({
        "name": "wall", "repo_url": f"file://{root / 'repo'}",
        "deploy_path": "/srv/wall", "groups": ["bench"],
        "hooks": {"before_release": f"sleep {hook_sleep}\n"}})
    await spread_over_racks(services)


async def start_release(services: Services, args: argparse.Namespace) -> dict:
    user = await services.auth.user("admin")
    return await services.releases.create(user, {
        "project": "wall", "ref": "main",
        "strategy": {"batches": ["100%"], "parallel": args.parallel}})


async def release_state(services: Services, release_id: int) -> dict:
    """The release's state and counts only: the API's view (every host run of 2,000
    hosts) read twice a second would load the process the page is served from."""
    return await services.store.releases.find_one({"_id": release_id},
                                                  {"state": 1, "counts": 1}) or {}


async def wait_until_running(services: Services, release_id: int) -> None:
    while True:
        current = await release_state(services, release_id)
        if (current.get("counts") or {}).get("running", 0) or current.get("state") in TERMINAL:
            return
        await asyncio.sleep(0.1)


async def wait_until_done(services: Services, release_id: int, seconds: float) -> str:
    # Its task, taken now: the run leaves `runs` before its last writes (host results).
    entry = services.releases.runs.get(release_id)
    deadline = time.monotonic() + seconds
    state = "running"
    while time.monotonic() < deadline:
        state = (await release_state(services, release_id)).get("state", "pending")
        if state in TERMINAL:
            break
        await asyncio.sleep(0.5)
    if entry is not None:                       # its last writes, before anything closes
        await asyncio.wait([entry[1]], timeout=60)
    return state


@contextlib.asynccontextmanager
async def bench_window(page, windows: list[tuple[float, float]]):
    """Note when the bench itself works in the page (performance.now() before and after)."""
    start = await page.evaluate("performance.now()")
    try:
        yield
    finally:
        windows.append((start, await page.evaluate("performance.now()")))


def overlaps(task: dict, windows: list[tuple[float, float]]) -> bool:
    return any(task["start"] < end and task["start"] + task["duration"] > start
               for start, end in windows)


async def page_matches(page, services: Services) -> bool:
    snapshot = await services.wall.snapshot()
    expected = {host["name"]: host["state"] for host in snapshot["hosts"]}
    try:
        await page.wait_for_function(
            f"(expected) => {{ const got = ({PAGE_STATES})(); return Object.keys(expected)"
            ".length === Object.keys(got).length && Object.entries(expected)"
            ".every(([k, v]) => got[k] === v); }", arg=expected, timeout=15_000)
        return True
    except Exception:
        return False


async def watch_wall(base_url: str, link_path: str, release: dict, args: argparse.Namespace,
                     services: Services, workdir: Path, timeline: CpuTimeline) -> dict:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        executable = CHROMIUM
        if args.browser_cpus:
            executable = pinned_browser(CHROMIUM, args.browser_cpus, workdir)
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        context = await browser.new_context(base_url=base_url,
                                            viewport={"width": 1920, "height": 1080})
        await context.add_init_script(WATCH)
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        cdp = await context.new_cdp_session(page)
        heap = PageHeap(cdp)
        await heap.watch_workers()          # the wall draws in a worker: its heap counts
        await wait_until_running(services, release["id"])
        lag = LoopLag()
        lag.start()
        steps = ServerSteps(services)
        opened = time.monotonic()
        if args.trace:
            await browser.start_tracing(page=page, path=args.trace, categories=CATEGORIES)
        await page.goto(link_path)
        await page.wait_for_function("() => document.body.dataset.rendered === 'true'",
                                     timeout=30_000)
        time_origin = await page.evaluate("performance.timeOrigin") / 1000
        rendered = time.monotonic()
        first_render = await page.evaluate(
            "() => performance.getEntriesByName('ferry:first-render')[0].startTime")
        timing = await page.evaluate(TIMING)
        # The bench's own work in the page (a screenshot, a forced GC for the heap size)
        # runs on its main thread too: its windows are kept out of the page's long tasks.
        windows = []
        async with bench_window(page, windows):
            if args.screenshot:
                await page.screenshot(path=args.screenshot)
            heap_start = await heap.sizes_mb()
        if args.cpu_profile:
            await cdp.send("Profiler.enable")
            await cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            await cdp.send("Profiler.start")
        final_state = await wait_until_done(services, release["id"], args.seconds)
        trace = await browser.stop_tracing() if args.trace else None
        if args.cpu_profile:
            profile = (await cdp.send("Profiler.stop"))["profile"]
            Path(args.cpu_profile).write_text(json.dumps(profile))
        lag.stop()
        release_end = time.monotonic()
        matches = await page_matches(page, services)
        releases = 1
        # When each soak release started, on the page's clock (roughly: counted from
        # when the bench asked for the page), to set beside the long tasks' starts.
        release_starts = []
        # The heap once the page holds every host's state (the first release done), then
        # after every release of the soak: flat means the series does not climb.
        heap_series = []
        soak_outcomes = []      # each soak release's state and hosts by state
        if args.minutes:
            async with bench_window(page, windows):
                heap_series.append(await heap.sizes_mb())
            soak_end = time.monotonic() + args.minutes * 60
            while time.monotonic() < soak_end:
                release_starts.append(round((time.monotonic() - opened) * 1000))
                nxt = await start_release(services, args)
                releases += 1
                state = await wait_until_done(services, nxt["id"],
                                              max(1, soak_end - time.monotonic()))
                counts = (await release_state(services, nxt["id"])).get("counts") or {}
                soak_outcomes.append({"state": state, **{k: n for k, n in counts.items() if n}})
                async with bench_window(page, windows):
                    heap_series.append(await heap.sizes_mb())
                    if args.heap_snapshots and releases == 4:
                        await heap.snapshots(Path(args.heap_snapshots), "after-4")
            if args.heap_snapshots:
                async with bench_window(page, windows):
                    await heap.snapshots(Path(args.heap_snapshots), "end")
            matches = matches and await page_matches(page, services)
        async with bench_window(page, windows):
            heap_end = await heap.sizes_mb()
        every_task = await page.evaluate("() => window.__longTasks")
        tasks = [t for t in every_task if not overlaps(t, windows)]
        wall = await page.evaluate("""() => ({events: window.__wall.model.eventsApplied,
            frames: window.__wall.frames, tiles: window.__wall.tiles.length,
            status: window.__wall.status, lastRenderMs: window.__wall.lastRenderMs,
            paintedOn: window.__wall.painter.where})""")
        workers_watched = len(heap.workers)
        await browser.close()
    # Read once nothing is measured: parsing a trace of tens of megabytes holds this
    # process, Ferry's server included, for a while.
    traced = None if trace is None else long_tasks(trace, "ferry:first-render", first_render)
    return {"first_render_ms": round(first_render, 1), "first_render_parts_ms": timing,
            "server_steps_ms": steps.steps[:12],
            "server_loop_lag_ms": {"first_render": lag.summary(opened, rendered),
                                   "release": lag.summary(opened, release_end)},
            "longest_task_ms": round(max((t["duration"] for t in tasks), default=0), 1),
            "long_tasks": len(tasks),
            "bench_induced_tasks_ms": [[round(t["start"]), round(t["duration"])]
                                       for t in every_task if overlaps(t, windows)],
            "tasks_ms": [[round(t["start"]), round(t["duration"])] for t in tasks][:50],
            "long_tasks_cpu": [cpu_during(task, time_origin, timeline) for task in tasks][:50],
            "cpu_shares": timeline.shares(),
            "traced_tasks_ms": traced if traced is None else traced[:50],
            "traced_longest_task_ms": None if traced is None else max(
                (task["ms"] for task in traced if not task["by_bench"]), default=0),
            "events_applied": wall["events"], "frames": wall["frames"],
            "tiles_drawn": wall["tiles"], "last_render_ms": round(wall["lastRenderMs"], 1),
            "transport": wall["status"], "page_errors": errors,
            "page_matches_api": matches, "release_state": final_state,
            "releases": releases, "soak_minutes": args.minutes,
            "soak_release_starts_ms": release_starts, "soak_outcomes": soak_outcomes,
            "tiles_painted_on": wall["paintedOn"], "workers_watched": workers_watched,
            "js_heap_start_mb": heap_start["total"], "js_heap_end_mb": heap_end["total"],
            "js_heap_parts_mb": {"start": heap_start, "end": heap_end},
            "js_heap_series_mb": [sizes["total"] for sizes in heap_series],
            "worker_heap_series_mb": [sizes["workers"] for sizes in heap_series]}


def cpu_during(task: dict, time_origin: float, timeline: CpuTimeline) -> dict:
    """A long task of the page's (start and duration on its clock) with what each party on
    the machine spent on a CPU meanwhile, and how much of it the page's main thread had."""
    start = time_origin + task["start"] / 1000
    spent = timeline.window(start, start + task["duration"] / 1000) or {}
    return {"start_ms": round(task["start"]), "ms": round(task["duration"]), **spent}


async def main(args: argparse.Namespace) -> dict:
    load_start = os.getloadavg()
    async with bench_setup(args.hosts, admin_password=PASSWORD, fleet_nice=args.fleet_nice,
                           fleet_own_session=True, cookie_secret="bench-wall",
                           # 2,000 simulated hosts share this machine's CPU: a
                           # handshake waiting for it is not what is measured here
                           ssh_connect_timeout_s=SSH_TIMEOUT_S,
                           ssh_login_timeout_s=SSH_TIMEOUT_S) as setup:
        services, root = setup.services, setup.root
        timeline = CpuTimeline(setup.database.process.pid, setup.fleet.cpu_ms)
        await wall_project(services, root, args.hook_sleep)
        link = await services.wall.links.create("admin", {"name": "bench TV"})
        server, base_url = await serve(services)
        timeline.start()
        try:
            release = await start_release(services, args)
            result = await watch_wall(base_url, link["path"], release, args, services, root,
                                      timeline)
            result.update(await outcome(services, release["id"]))
        finally:
            timeline.stop()
            server.stop()
            await services.events.close_clients()
    return {"hosts": args.hosts, "parallel": args.parallel, "fleet_nice": args.fleet_nice,
            "browser_cpus": sorted(args.browser_cpus or []),
            "server_cpus": sorted(os.sched_getaffinity(0)),
            "target_first_render_ms": 2000, "target_longest_task_ms": 100, **result,
            "load_avg_start": [round(x, 1) for x in load_start],
            "load_avg_end": [round(x, 1) for x in os.getloadavg()]}


async def outcome(services: Services, release_id: int) -> dict:
    """The first release's hosts by state, why the failed ones failed (the three
    commonest reasons, host addresses cut off), so a failed release is never silent, and
    how long it took."""
    release = await services.releases.get(release_id)
    reasons = Counter((run.get("reason") or "").split(" to ")[0][:80]
                      for run in release["host_runs"] if run["state"] == "failed")
    return {"hosts_by_state": {k: v for k, v in release["counts"].items() if v},
            "failure_reasons": reasons.most_common(3),
            "release_s": round((release.get("duration_ms") or 0) / 1000, 1)}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ferry wall benchmark")
    parser.add_argument("--hosts", type=int, default=2000)
    parser.add_argument("--parallel", type=int, default=100)
    parser.add_argument("--hook-sleep", type=float, default=1.0,
                        help="seconds each host's before_release hook sleeps")
    parser.add_argument("--fleet-nice", type=int, default=0,
                        help="CPU niceness of the simulated hosts (default: %(default)s; on a "
                             "loaded machine a niced fleet is starved and its SSH handshakes "
                             "time out)")
    parser.add_argument("--seconds", type=float, default=900,
                        help="wait at most this long for the first release")
    parser.add_argument("--minutes", type=float, default=0,
                        help="soak: keep the wall open this long, releases back to back, "
                             "and report the JS heap at the start and the end")
    parser.add_argument("--screenshot", default=None, help="save the first render here")
    parser.add_argument("--heap-snapshots", default=None, metavar="DIR",
                        help="with --minutes: save the page's heap snapshot after the 4th "
                             "release and at the end of the soak in DIR")
    parser.add_argument("--cpu-profile", default=None, metavar="FILE",
                        help="write the page's JavaScript CPU profile during the first "
                             "release (after the first render) to FILE (.cpuprofile)")
    parser.add_argument("--trace", default=None, metavar="FILE",
                        help="record a Chrome performance trace from navigation to the end "
                             "of the first release in FILE, and print the page's main-thread "
                             "tasks over 50 ms from it with their CPU time (traced_tasks_ms)")
    parser.add_argument("--browser-cpus", type=parse_cpus, default=None, metavar="CPUS",
                        help="run the browser on these CPUs (e.g. 1) and Ferry, its database "
                             "and the fleet on the others, as a TV and a server are two "
                             "machines (default: all share every CPU)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    arguments = parse_args()
    if arguments.browser_cpus:
        keep_off(arguments.browser_cpus)
    if not Path(CHROMIUM).exists():
        sys.exit("bench.wall needs Debian's chromium: apt-get install -y chromium")
    print(json.dumps(asyncio.run(main(arguments))), flush=True)
