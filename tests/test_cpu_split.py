"""bench/cpu_split.py: the wall bench's browser on CPUs of its own."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess

import pytest

from bench.cpu_split import parse_cpus, pinned_browser


def test_all_the_cpus_are_refused_as_the_browsers_own():
    every = ",".join(str(cpu) for cpu in sorted(os.sched_getaffinity(0)))
    with pytest.raises(argparse.ArgumentTypeError, match="some, not all"):
        parse_cpus(every)


@pytest.mark.parametrize("text", ["", "x", "1-", "-1"])
def test_a_cpu_list_that_is_not_one_is_refused(text):
    with pytest.raises(argparse.ArgumentTypeError):
        parse_cpus(text)


@pytest.mark.skipif(shutil.which("taskset") is None, reason="needs taskset (util-linux)")
def test_the_launcher_runs_the_browser_on_the_cpus_given(tmp_path):
    cpu = min(os.sched_getaffinity(0))
    launcher = pinned_browser(shutil.which("grep"), {cpu}, tmp_path)
    shown = subprocess.run([launcher, "Cpus_allowed_list", "/proc/self/status"],
                           capture_output=True, text=True, check=True).stdout
    assert shown.split() == ["Cpus_allowed_list:", str(cpu)]
