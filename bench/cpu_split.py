"""One machine split in two, as a TV and a server are two machines: the browser on CPUs
of its own, Ferry, its database and the simulated fleet on the others.

On a 2-core machine the page's main thread otherwise shares both cores with the release
it watches, and its longest task measures how long it waited for one. With the split, it
measures the page on a CPU of its own, while the server side, on what is left, is slower
than it would be on a whole machine (so this is a second measurement, not a better one).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import stat
from pathlib import Path

CPU_RANGE = re.compile(r"(\d+)(?:-(\d+))?")


def parse_cpus(text: str) -> set[int]:
    """"1" or "2,3" or "2-3" → {…}: CPUs this process may run on, and not all of them."""
    allowed = os.sched_getaffinity(0)
    cpus: set[int] = set()
    for part in text.split(","):
        match = CPU_RANGE.fullmatch(part.strip())
        if match is None:
            cpus = set()
            break
        low, high = match.group(1), match.group(2) or match.group(1)
        cpus.update(range(int(low), int(high) + 1))
    if not cpus or not cpus < allowed:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give some, not all, of CPUs {sorted(allowed)}, e.g. 1 or 2-3")
    return cpus


def keep_off(cpus: set[int]) -> None:
    """Keep this process, and every process it starts from now on, off `cpus`."""
    os.sched_setaffinity(0, os.sched_getaffinity(0) - cpus)


def pinned_browser(executable: str, cpus: set[int], directory: Path) -> str:
    """A launcher for `executable` that runs it, and the processes it starts, on `cpus`."""
    taskset = shutil.which("taskset")
    if taskset is None:
        raise RuntimeError("--browser-cpus needs taskset (util-linux)")
    launcher = directory / "chromium-pinned"
    cpu_list = ",".join(str(cpu) for cpu in sorted(cpus))
    launcher.write_text(f'#!/bin/sh\nexec {taskset} -c {cpu_list} {executable} "$@"\n')
    launcher.chmod(launcher.stat().st_mode | stat.S_IXUSR)
    return str(launcher)
