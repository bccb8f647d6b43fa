"""bench/cpu_timeline.py: who had the machine's CPUs during a window of a bench run."""

from __future__ import annotations

import os
import subprocess
import threading
import time

from bench.cpu_timeline import CpuTimeline, browser_processes, thread_schedstat_ms


def counters(machine: float, ferry: float, database: float = 0.0, fleet: float = 0.0,
             browser: float = 0.0, main: tuple[float, float] = (0.0, 0.0)) -> dict:
    return {"machine": machine, "ferry": ferry, "database": database, "fleet": fleet,
            "browser": browser, "main_thread_cpu:7": main[0], "main_thread_waited:7": main[1]}


def timeline(*samples: tuple[float, dict]) -> CpuTimeline:
    line = CpuTimeline(database_pid=os.getpid(), fleet_cpu_ms=lambda: 0.0)
    line.samples = list(samples)
    return line


def test_a_window_reads_each_partys_cpu_as_the_counters_grew_across_it():
    line = timeline((100.0, counters(0, 0, main=(0, 0))),
                    (100.2, counters(400, 100, 100, 40, 60, main=(20, 160))))
    assert line.window(100.0, 100.2) == {
        "window_ms": 200,
        "cpu_ms": {"ferry": 100.0, "database": 100.0, "fleet": 40.0, "browser": 60.0,
                   "other": 100.0},
        "machine_busy_ms": 400.0, "main_thread_cpu_ms": 20.0, "main_thread_waited_ms": 160.0}


def test_a_window_between_samples_reads_over_the_samples_that_enclose_it():
    line = timeline((10.0, counters(0, 0)), (10.1, counters(100, 50)),
                    (10.2, counters(200, 90)), (10.3, counters(300, 95)))
    spent = line.window(10.15, 10.22)
    assert spent["window_ms"] == 200 and spent["cpu_ms"]["ferry"] == 45.0


def test_the_main_thread_read_is_the_busiest_renderers_the_pages():
    idle = {"main_thread_cpu:9": 5.0, "main_thread_waited:9": 900.0}
    line = timeline((1.0, {**counters(0, 0, main=(0, 0)), **idle}),
                    (2.0, {**counters(1000, 0, main=(300, 40)), "main_thread_cpu:9": 6.0,
                           "main_thread_waited:9": 1900.0}))
    spent = line.window(1.0, 2.0)
    assert (spent["main_thread_cpu_ms"], spent["main_thread_waited_ms"]) == (300.0, 40.0)


def test_a_window_the_samples_do_not_span_reads_as_nothing():
    line = timeline((10.0, counters(0, 0)), (11.0, counters(1000, 500)))
    assert line.window(9.0, 10.5) is None and line.window(10.5, 12.0) is None


def test_a_threads_schedstat_counts_its_time_on_a_cpu():
    before, _ = thread_schedstat_ms(os.getpid(), threading.get_native_id())
    deadline = time.thread_time() + 0.05
    while time.thread_time() < deadline:
        pass
    after, _ = thread_schedstat_ms(os.getpid(), threading.get_native_id())
    assert after - before >= 40


def test_a_thread_that_is_gone_reads_as_zeros():
    assert thread_schedstat_ms(os.getpid(), 2**22 + 1) == (0.0, 0.0)


def test_a_chromium_child_that_rewrote_its_argv_as_one_string_is_found_as_a_renderer():
    child = subprocess.Popen(["bash", "-c", 'exec -a "/usr/lib/chromium/chromium '
                              '--type=renderer --lang=en-US" sleep 30'])
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            every, renderers = browser_processes(os.getpid(), set())
            if renderers:
                break
            time.sleep(0.05)
        assert renderers == [child.pid] and every == [child.pid]
    finally:
        child.kill()
        child.wait()


def test_an_excluded_process_is_not_the_browsers():
    child = subprocess.Popen(["bash", "-c", 'exec -a "chromium --type=renderer" sleep 30'])
    try:
        time.sleep(0.3)
        assert browser_processes(os.getpid(), {child.pid}) == ([], [])
    finally:
        child.kill()
        child.wait()


def test_the_sampler_records_while_it_runs_and_stops_when_told():
    line = CpuTimeline(database_pid=os.getpid(), fleet_cpu_ms=lambda: 0.0)
    line.start()
    time.sleep(0.35)
    line.stop()
    count = len(line.samples)
    time.sleep(0.2)
    assert count >= 2 and len(line.samples) == count
    assert set(line.shares()) >= {"ferry", "database", "fleet", "browser"}
