"""The page's long main-thread tasks as a Chrome performance trace sees them: how long each
took on the clock, and how long the renderer's main thread was on a CPU during it.

A long task (PerformanceObserver "longtask") is clock time. On a machine whose cores are
all busy, a task of a few milliseconds of work can wait far longer than that in the CPU's
run queue; the trace's thread time (`tdur`) tells the work from the wait.

The bench drives the page through DevTools (Playwright compiles its injected script of
~330 KB in the page; the heap is measured after a forced GC): such a task is the bench's,
not the page's, and is marked `by_bench`.
"""

from __future__ import annotations

import json

CATEGORIES = ["toplevel", "blink.user_timing", "devtools.timeline"]
TASK_NAMES = {"RunTask", "ThreadControllerImpl::RunTask"}


def _main_threads(events: list[dict]) -> set[tuple[int, int]]:
    return {(e["pid"], e["tid"]) for e in events
            if e.get("ph") == "M" and e.get("name") == "thread_name"
            and e.get("args", {}).get("name") == "CrRendererMain"}


def long_tasks(trace: bytes, mark: str, mark_ms: float,
               over_ms: float = 50) -> list[dict] | None:
    """The renderer main thread's tasks over `over_ms`: `start_ms` on the page's clock
    (placed by the performance mark `mark`, which the page set at `mark_ms`), `ms` on the
    clock, `cpu_ms` on a CPU, `by_bench` if DevTools (the bench) made it. None if the trace
    has no such mark (the page never set it)."""
    data = json.loads(trace)
    events = data["traceEvents"] if isinstance(data, dict) else data
    threads = _main_threads(events)
    marks = [e for e in events if e.get("name") == mark]
    if not marks:
        return None
    origin_us = marks[0]["ts"] - mark_ms * 1000
    long = [event for event in events
            if event.get("ph") == "X" and event.get("name") in TASK_NAMES
            and (event["pid"], event["tid"]) in threads and event.get("dur", 0) > over_ms * 1000]
    devtools = [event for event in events
                if (event.get("pid"), event.get("tid")) in threads and _from_devtools(event)]
    tasks = []
    for task in long:
        end = task["ts"] + task["dur"]
        tasks.append({"start_ms": round((task["ts"] - origin_us) / 1000),
                      "ms": round(task["dur"] / 1000, 1),
                      "cpu_ms": round(task["tdur"] / 1000, 1) if "tdur" in task else None,
                      "by_bench": _from_devtools(task) or any(
                          (event["pid"], event["tid"]) == (task["pid"], task["tid"])
                          and task["ts"] <= event["ts"] <= end for event in devtools)})
    return sorted(tasks, key=lambda task: task["start_ms"])


def _from_devtools(event: dict) -> bool:
    """A DevTools message to the page, or a task DevTools posted (a forced GC)."""
    args = event.get("args") or {}
    tag = (args.get("chrome_mojo_event_info") or {}).get("mojo_interface_tag", "")
    return tag.startswith("blink.mojom.DevTools") or "v8_inspector" in args.get("src_func", "")
