"""bench/page_trace.py: the page's long main-thread tasks, read from a Chrome trace."""

from __future__ import annotations

import json

from bench.page_trace import long_tasks

RENDERER = {"ph": "M", "name": "thread_name", "pid": 7, "tid": 1,
            "args": {"name": "CrRendererMain"}}
COMPOSITOR = {"ph": "M", "name": "thread_name", "pid": 7, "tid": 2,
              "args": {"name": "Compositor"}}
MARK = {"ph": "I", "name": "ferry:first-render", "pid": 7, "tid": 1, "ts": 1_500_000}


def task(tid: int, ts: int, dur: int, tdur: int | None = None) -> dict:
    event = {"ph": "X", "name": "ThreadControllerImpl::RunTask", "pid": 7, "tid": tid,
             "ts": ts, "dur": dur}
    if tdur is not None:
        event["tdur"] = tdur
    return event


def trace(*events: dict) -> bytes:
    return json.dumps({"traceEvents": [RENDERER, COMPOSITOR, *events]}).encode()


def test_a_long_task_is_placed_on_the_page_clock_by_the_mark_with_its_cpu_time():
    data = trace(MARK, task(1, 1_600_000, 120_000, 30_000))
    assert long_tasks(data, "ferry:first-render", 500) == [
        {"start_ms": 600, "ms": 120.0, "cpu_ms": 30.0, "by_bench": False}]


def test_short_tasks_and_tasks_of_other_threads_are_left_out():
    data = trace(MARK, task(1, 1_000_000, 40_000, 40_000), task(2, 1_000_000, 300_000))
    assert long_tasks(data, "ferry:first-render", 500) == []


def test_a_task_without_thread_time_reports_no_cpu_time():
    data = trace(MARK, task(1, 1_000_000, 80_000))
    assert long_tasks(data, "ferry:first-render", 0)[0]["cpu_ms"] is None


def test_a_trace_without_the_mark_gives_none():
    assert long_tasks(trace(task(1, 1_000_000, 80_000)), "ferry:first-render", 0) is None


def test_a_task_that_receives_a_devtools_message_is_the_benchs():
    message = {"ph": "X", "name": "Receive mojo message", "pid": 7, "tid": 1,
               "ts": 1_000_100, "dur": 60_000, "args": {"chrome_mojo_event_info": {
                   "mojo_interface_tag": "blink.mojom.DevToolsSession"}}}
    data = trace(MARK, task(1, 1_000_000, 80_000, 20_000), message)
    assert long_tasks(data, "ferry:first-render", 0)[0]["by_bench"] is True


def test_a_forced_gc_posted_by_devtools_is_the_benchs():
    gc = task(1, 1_000_000, 80_000, 20_000)
    gc["args"] = {"src_func": "v8_inspector::V8HeapProfilerAgentImpl::collectGarbage"}
    assert long_tasks(trace(MARK, gc), "ferry:first-render", 0)[0]["by_bench"] is True
