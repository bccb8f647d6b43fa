"""Who had the machine's CPUs while the page's main thread ran a long task.

A long task (PerformanceObserver "longtask") is clock time: on a machine whose cores are
all busy, a few milliseconds of the page's work can wait far longer than that for a CPU.
A Chrome trace tells the work from the wait for the one release it covers; over a soak of
many releases this sampler does, cheaply: ten times a second, in a thread of its own, it
reads the CPU time spent so far by each party on this machine (Ferry's process, its
database, the simulated fleet with every command it ran, the browser's processes, and the
whole machine) and the page's renderer's main thread's own time on a CPU and waiting in
the run queue (/proc/<pid>/task/<tid>/schedstat, in nanoseconds). Any window of the run (a long
task's) then reads as the counters' deltas over the samples that enclose it, so a
window is as fine as the sampling interval and no finer.
"""

from __future__ import annotations

import bisect
import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fleet.cpuacct import descendants, process_cpu_ms

INTERVAL_S = 0.1
BROWSER_SCAN_S = 0.5
PARTIES = ("ferry", "database", "fleet", "browser")
_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_ms() -> float:
    """CPU time every core of this machine spent busy (not idle, not waiting on I/O)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) * 1000 / _TICKS


def thread_schedstat_ms(pid: int, tid: int) -> tuple[float, float]:
    """(on a CPU, waiting for one) of one thread so far, in ms; zeros once it is gone."""
    try:
        run, wait, _ = Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()
    except (OSError, ValueError):
        return 0.0, 0.0
    return int(run) / 1e6, int(wait) / 1e6


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def browser_processes(parent: int, excluded: set[int]) -> tuple[list[int], list[int]]:
    """(every chromium process under `parent`, the renderers among them: the page's, and
    idle ones of the browser's own whose main threads add next to nothing)."""
    every, renderers = [], []
    for pid in descendants([parent]):
        if pid in excluded:
            continue
        argv = _cmdline(pid)
        # chromium's children rewrite their argv as one string, flags and all
        command = " ".join(argv).split()
        if command and "chrom" in Path(command[0]).name:
            every.append(pid)
            if "--type=renderer" in command:
                renderers.append(pid)
    return every, renderers


class CpuTimeline:
    """Samples, in a thread, the CPU counters of this machine's parties; reads any window
    of the run (epoch seconds, as the page's performance.timeOrigin is) as their deltas
    over the enclosing samples."""

    def __init__(self, database_pid: int, fleet_cpu_ms: Callable[[], float]) -> None:
        self.database_pid = database_pid
        self.fleet_cpu_ms = fleet_cpu_ms
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cpu timeline", daemon=True)
        self._browser: tuple[list[int], list[int]] = ([], [])
        self._last: dict[tuple[str, int], float] = {}

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        scanned = 0.0
        while not self._stop.is_set():
            if time.monotonic() - scanned > BROWSER_SCAN_S:
                self._browser = browser_processes(os.getpid(), {self.database_pid})
                scanned = time.monotonic()
            with contextlib.suppress(OSError, ValueError):
                self.samples.append((time.time(), self._counters()))
            self._stop.wait(INTERVAL_S)

    def _counters(self) -> dict[str, float]:
        every, renderers = self._browser
        for pid in every:
            self._kept(("browser", pid), process_cpu_ms(pid))
        for pid in renderers:
            run, wait = thread_schedstat_ms(pid, pid)
            self._kept(("main_thread_cpu", pid), run)
            self._kept(("main_thread_waited", pid), wait)
        counters = {"machine": machine_busy_ms(), "ferry": process_cpu_ms(os.getpid()),
                    "database": process_cpu_ms(self.database_pid),
                    "fleet": self.fleet_cpu_ms(), "browser": 0.0}
        for (key, pid), value in self._last.items():
            if key == "browser":
                counters[key] += value
            else:                           # one renderer's main thread: kept apart
                counters[f"{key}:{pid}"] = value
        return counters

    def _page_renderer(self) -> int | None:
        """The renderer whose main thread had the most CPU over the run: the page's (the
        browser's other renderers sit idle)."""
        cpu = {key: value for key, value in self.samples[-1][1].items()
               if key.startswith("main_thread_cpu:")} if self.samples else {}
        return int(max(cpu, key=cpu.__getitem__).split(":")[1]) if cpu else None

    def _main_thread(self, first: dict, last: dict) -> dict[str, float]:
        """The page's main thread between two samples: on a CPU, waiting for one (ms)."""
        pid = self._page_renderer()
        return {kind: last.get(f"{kind}:{pid}", 0.0) - first.get(f"{kind}:{pid}", 0.0)
                for kind in ("main_thread_cpu", "main_thread_waited")}

    def _kept(self, key: tuple[str, int], value: float) -> None:
        """A process's counter never goes down: once it exits (reads as 0) its last
        value stands, so the sums stay the CPU spent so far."""
        self._last[key] = max(value, self._last.get(key, 0.0))

    def _enclosing(self, start: float, end: float) -> tuple[tuple, tuple] | None:
        """The last sample at or before `start` and the first at or after `end`."""
        times = [sample[0] for sample in self.samples]
        first = bisect.bisect_right(times, start) - 1
        last = bisect.bisect_left(times, end)
        if first < 0 or last == len(times):
            return None
        return self.samples[first], self.samples[last]

    def window(self, start: float, end: float) -> dict | None:
        """CPU ms each party spent over the samples enclosing [start, end] (epoch
        seconds; `window_ms` long, so at least the window and at most two sampling
        intervals more), the rest of the machine as `other`, and the renderer main
        thread's time on a CPU and waiting for one. Counters are read, not guessed: a
        task shorter than the interval is never given a share of an interval's CPU."""
        span = self._enclosing(start, end)
        if span is None:
            return None
        (first_at, first), (last_at, last) = span
        delta = {key: last[key] - first[key] for key in ("machine", *PARTIES)}
        delta.update(self._main_thread(first, last))
        parties = {party: round(delta[party], 1) for party in PARTIES}
        parties["other"] = round(max(0.0, delta["machine"] - sum(delta[p] for p in PARTIES)), 1)
        return {"window_ms": round((last_at - first_at) * 1000), "cpu_ms": parties,
                "machine_busy_ms": round(delta["machine"], 1),
                "main_thread_cpu_ms": round(delta["main_thread_cpu"], 1),
                "main_thread_waited_ms": round(delta["main_thread_waited"], 1)}

    def shares(self) -> dict[str, float]:
        """Each party's share of the machine's busy time over the whole run; and in
        seconds, the machine's busy time, each party's, and the renderer main thread's
        time on a CPU and waiting for one."""
        if len(self.samples) < 2:
            return {}
        first, last = self.samples[0][1], self.samples[-1][1]
        busy = (last["machine"] - first["machine"]) or 1.0
        shares = {party: round((last[party] - first[party]) / busy, 3) for party in PARTIES}
        for key in ("machine", *PARTIES):
            shares[f"{key}_s"] = round((last[key] - first[key]) / 1000, 1)
        for key, value in self._main_thread(first, last).items():
            shares[f"{key}_s"] = round(value / 1000, 1)
        return shares
