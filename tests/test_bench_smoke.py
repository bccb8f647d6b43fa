"""The benchmarks run end to end at tiny sizes and print their final JSON line.
(No timing is asserted: figures belong in docs/benchmarks.md, not in tests.)"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def run_bench(*args: str) -> dict:
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                            text=True, timeout=150)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_deploy_bench_deploys_every_host_and_reports_its_figures():
    figures = run_bench("bench.deploy", "--hosts", "3", "--parallel", "3",
                        "--artifact-mb", "0.1")
    assert set(figures) >= {"hosts", "hosts_ok", "wall_s", "reference_wall_s", "ratio",
                            "per_host_ms", "rss_mb"}
    assert figures["hosts"] == figures["hosts_ok"] == 3
    assert figures["reference_hosts_ok"] == 3
    assert figures["fleet"] == "openssh"
    assert figures["fleet_cpu_ms_per_host"] > 0 and figures["reference_fleet_cpu_ms_per_host"] > 0
    assert figures["controller_cpu_ms_per_host"] > 0 and figures["db_rss_mb"] > 0
    assert figures["execs_per_host"] >= 1 and figures["reference_execs_per_host"] == 3


def test_deploy_bench_runs_on_the_simulated_fleet_too():
    figures = run_bench("bench.deploy", "--fleet", "asyncssh", "--hosts", "2", "--parallel",
                        "2", "--artifact-mb", "0.1", "--repeat", "2")
    assert figures["hosts_ok"] == figures["reference_hosts_ok"] == 2
    assert figures["fleet_cpu_ms_per_host"] > 0 and len(figures["rounds"]) == 2


def test_fanout_bench_delivers_every_event_and_reports_its_figures():
    figures = run_bench("bench.fanout", "--clients", "20", "--rate", "100", "--seconds", "2")
    assert set(figures) >= {"clients", "published", "delivered", "lost", "p50_ms", "p99_ms",
                            "naive_p99_ms", "rss_mb"}
    assert figures["clients"] == 20 and figures["published"] > 0
    assert figures["lost"] == 0


def test_chat_bench_delivers_every_message_to_every_reader_and_reports_its_figures():
    figures = run_bench("bench.chat", "--clients", "12", "--longpoll", "3", "--senders", "3",
                        "--rate", "5", "--seconds", "2")
    assert set(figures) >= {"clients", "published", "lost", "duplicated", "p50_ms", "p99_ms",
                            "rss_mb"}
    assert figures["clients"] == 12 and figures["published"] == 10
    assert figures["lost"] == 0 and figures["duplicated"] == 0


def test_console_bench_renders_the_release_page_and_reports_its_figures():
    if not Path("/usr/bin/chromium").exists():
        pytest.fail("the console benchmark needs Debian's chromium: run "
                    "`apt-get install -y chromium` (as root), then run the tests again")
    figures = run_bench("bench.console", "--hosts", "60", "--parallel", "20",
                        "--open-after-ok", "5", "--hook-sleep", "0.5")
    assert set(figures) >= {"hosts", "first_render_ms", "longest_task_ms", "long_tasks",
                            "events_applied", "page_matches_api"}
    assert figures["page_matches_api"] is True
    assert figures["counts"] == {"ok": 60}
    assert figures["page_errors"] == []


def test_durability_bench_loses_nothing_when_synced_and_reports_its_figures():
    figures = run_bench("bench.durability", "--runs", "1", "--modes", "sync", "--kill-writes",
                        "30", "--states", "4", "--batches", "2", "--lines", "20",
                        "--renewals", "4", "--raw-writes", "20")
    sync = figures["modes"]["sync"]
    assert sync["lost"] == [0] and sync["runs"][0]["acked"] == sync["runs"][0]["found"] == 30
    assert set(sync["median"]) >= {"state_change_ms", "log_lines_per_s", "renewal_ms",
                                   "pattern_s", "insert_one_per_s", "insert_many_docs_per_s"}


def test_the_database_write_bench_times_retryable_and_ferrys_writes_at_a_tiny_size():
    figures = run_bench("bench.db_writes", "--writes", "20", "--measured", "10")
    assert "retryWrites=false" in figures["ferry_url_options"]
    for name in ("retryable", "not_retryable"):
        assert figures[name]["first_200_ms"] > 0 and figures[name]["after_220_ms"] > 0


def test_the_database_write_bench_refuses_a_count_of_no_writes():
    result = subprocess.run([sys.executable, "-m", "bench.db_writes", "--measured", "0"],
                            cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "give 1 or more" in result.stderr


def test_the_release_database_bench_counts_each_sides_commands_at_a_tiny_size():
    figures = run_bench("bench.release_db", "--hosts", "3", "--releases", "1",
                        "--hook-sleep", "0", "--fleet-nice", "0")
    for name in ("ferry", "every_change"):
        release = figures[name]["releases"][0]
        assert release["hosts_ok"] == 3 and release["db_cpu_ms_per_host"] > 0
        assert release["documents_per_host"]["insert:host_runs"] == 1
    assert figures["db_cpu_ratio"] > 0
