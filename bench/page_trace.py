"""The page's long main-thread tasks as a Chrome performance trace sees them: how long each
took on the clock, and how long the renderer's main thread was on a CPU during it.

A long task (PerformanceObserver "longtask") is clock time. On a machine whose cores are
all busy, a task of a few milliseconds of work can wait far longer than that in the CPU's
run queue; the trace's thread time (`tdur`) tells the work from the wait.
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
    clock, `cpu_ms` on a CPU. None if the trace has no such mark (the page never set it)."""
    data = json.loads(trace)
    events = data["traceEvents"] if isinstance(data, dict) else data
    threads = _main_threads(events)
    marks = [e for e in events if e.get("name") == mark]
    if not marks:
        return None
    origin_us = marks[0]["ts"] - mark_ms * 1000
    tasks = []
    for event in events:
        if (event.get("ph") == "X" and event.get("name") in TASK_NAMES
                and (event["pid"], event["tid"]) in threads
                and event.get("dur", 0) > over_ms * 1000):
            tasks.append({"start_ms": round((event["ts"] - origin_us) / 1000),
                          "ms": round(event["dur"] / 1000, 1),
                          "cpu_ms": round(event["tdur"] / 1000, 1) if "tdur" in event else None})
    return sorted(tasks, key=lambda task: task["start_ms"])
