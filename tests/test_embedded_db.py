"""The embedded database child: isolated from Ferry's working directory and environment,
configured only by the db.toml Ferry writes, logged to db.log, stopped for sure; and the
start-up refusals (data directory in use, busy port, a database that cannot start)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pymongo
import pytest
from pymongo import monitoring

from services import embedded_db
from services.embedded_db import EmbeddedDatabase, EmbeddedDatabaseError
from services.settings import Settings
from tests.conftest import ROOT
from tests.test_crash_recovery import FerryProcess

pytestmark = pytest.mark.slow
HOSTILE_TOML = """\
[server]
log_level = "DEBUG"
[storage]
sync_on_commit = false
"""


@pytest.fixture
async def ferries() -> AsyncIterator[list[FerryProcess]]:
    """Ferry processes a test starts; whatever is left is stopped afterwards."""
    started: list[FerryProcess] = []
    yield started
    for ferry in started:
        ferry.cleanup()


def database_child(ferry: FerryProcess) -> psutil.Process:
    (child,) = psutil.Process(ferry.process.pid).children()
    return child


def secantus_processes_on(data_dir: Path) -> list[psutil.Process]:
    """Every SecantusDB process configured from `data_dir`, whoever its parent is."""
    config = str(data_dir / "db.toml")
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "secantus" in cmdline and config in cmdline:
            found.append(process)
    return found


async def run_ferry(data_dir: Path, port: int) -> subprocess.CompletedProcess:
    """`server.py` to the end, as a person would run it; its stdout and stderr."""
    return await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "server.py"), "--data-dir",
                         str(data_dir), "--port", str(port)],
        cwd=ROOT, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


async def test_a_toml_in_the_working_directory_and_secantus_variables_do_not_reach_it(
        tmp_path, ferries):
    workdir = tmp_path / "workdir"
    workdir.mkdir()
    (workdir / "secantusd.toml").write_text(HOSTILE_TOML)
    env = {**os.environ, "SECANTUS_TEST_FAST_STORAGE": "1", "SECANTUS_CHECKPOINT_SECONDS": "0",
           "WIREDTIGER_CONFIG": "in_memory=true", "PYTHONPATH": str(workdir)}
    ferry = FerryProcess(tmp_path / "data", cwd=workdir, env=env)
    ferries.append(ferry)
    await ferry.start()
    child = database_child(ferry)

    assert child.cmdline()[1:] == ["-I", "-m", "secantus", "--config",
                                   str(ferry.data_dir / "db.toml")]
    assert child.cwd() == str(ferry.data_dir)
    assert not {name for name in child.environ()
                if name.startswith(("SECANTUS", "WIREDTIGER", "PYTHON"))}
    # WiredTiger records the configuration it created the storage with: durable (journal
    # synced on commit, periodic checkpoints), which the fast test mode and the toml are not.
    created_with = (ferry.data_dir / "db" / "WiredTiger.basecfg").read_text()
    assert "transaction_sync=(enabled=true,method=fsync)" in created_with
    assert "checkpoint=(wait=60)" in created_with
    assert "in_memory" not in created_with


async def test_db_toml_is_read_by_secantus_as_durable_with_every_option_explicit(tmp_path):
    from secantus.config import SecantusConfig, load_config

    settings = Settings(data_dir=tmp_path)
    database = embedded_db.for_settings(settings)
    database._prepare()
    config, source = load_config(database.config_path)
    assert source == database.config_path and config.sync_on_commit
    assert (config.host, config.port) == ("127.0.0.1", database.port)
    assert config.storage_path == str(settings.embedded_db_dir)
    assert not config.auth and not config.enable_test_commands
    written = database.config_path.read_text()
    unset = {"tls_cert_file", "tls_key_file", "tls_ca_file", "oplog_archive_dir"}  # paths: none
    for name in SecantusConfig.__dataclass_fields__.keys() - unset:
        key = name.removeprefix("oplog_").removeprefix("tls_")
        assert f"\n{key} = " in written, name
    assert oct(database.config_path.stat().st_mode & 0o777) == "0o600"


async def test_a_second_ferry_on_a_data_directory_in_use_is_refused_in_one_line(
        tmp_path, ferries):
    first = FerryProcess(tmp_path / "data")
    ferries.append(first)
    await first.start()
    starts = (first.data_dir / "db.log").read_text().count("Ferry starts")

    second = await run_ferry(first.data_dir, embedded_db.free_port())

    assert second.returncode != 0
    assert second.stderr.strip() == (
        f"ferry: data directory {first.data_dir} is in use by another Ferry "
        f"(pid {first.process.pid}); stop it or choose another --data-dir")
    assert second.stdout == ""
    # Nothing was started: one database on that directory, and it is the first Ferry's.
    assert (first.data_dir / "db.log").read_text().count("Ferry starts") == starts
    assert [p.pid for p in secantus_processes_on(first.data_dir)] == [
        database_child(first).pid]


async def test_the_data_directory_is_free_again_once_ferry_was_killed(tmp_path, ferries):
    ferry = FerryProcess(tmp_path / "data")
    ferries.append(ferry)
    await ferry.start()
    await ferry.stop(signal.SIGKILL)     # also checks the database did not outlive it
    await ferry.start()
    assert (ferry.data_dir / "ferry.lock").read_text().strip() == str(ferry.process.pid)


async def test_a_busy_http_port_is_named_in_one_line_before_anything_starts(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await run_ferry(tmp_path / "data", port)
    assert result.returncode != 0
    assert result.stderr.strip() == (
        f"ferry: port {port} on 127.0.0.1 is already in use; stop what holds it or choose "
        "another with --port (PORT= for make demo)")
    assert not (tmp_path / "data" / "db.log").exists()


async def test_a_database_that_cannot_start_shows_its_own_last_log_lines(tmp_path):
    storage = tmp_path / "data" / "db"
    storage.mkdir(parents=True)
    (storage / "WiredTiger").write_text("not a WiredTiger database\n")
    (storage / "WiredTiger.turtle").write_text("garbage\n")

    result = await run_ferry(tmp_path / "data", embedded_db.free_port())

    assert result.returncode != 0
    first, *lines = result.stderr.strip().splitlines()
    assert first == (f"ferry: the embedded database exited with status 1; its last lines "
                     f"({tmp_path / 'data' / 'db.log'}):")
    assert any("WiredTiger.turtle" in line for line in lines), result.stderr
    assert all(line.startswith("  | ") for line in lines)
    assert "Traceback" not in first and not secantus_processes_on(tmp_path / "data")


async def test_a_wiredtiger_config_file_in_the_storage_is_refused(tmp_path):
    storage = tmp_path / "db"
    storage.mkdir()
    (storage / "WiredTiger.config").write_text("in_memory=true\n")
    database = EmbeddedDatabase(storage, home=tmp_path)
    with pytest.raises(EmbeddedDatabaseError, match=r"WiredTiger\.config would change how"):
        await database.start()
    assert database.process is None and not (tmp_path / "db.log").exists()


async def test_a_database_that_ignores_sigterm_is_killed_after_the_stop_timeout(tmp_path):
    database = EmbeddedDatabase(tmp_path / "db", home=tmp_path, stop_timeout_s=0.5)
    await database.start()
    process = database.process
    os.kill(process.pid, signal.SIGSTOP)    # a stopped process cannot act on SIGTERM
    await database.stop()
    assert process.returncode == -signal.SIGKILL
    assert database.process is None


async def test_a_database_that_dies_while_ferry_runs_is_logged_with_its_last_lines(
        tmp_path, caplog):
    database = EmbeddedDatabase(tmp_path / "db", home=tmp_path)
    await database.start()
    os.kill(database.process.pid, signal.SIGKILL)
    await database._watcher
    (record,) = [r for r in caplog.records if r.name == "ferry.db" and r.levelname == "ERROR"]
    assert record.getMessage().startswith(
        f"the embedded database exited with status -9 while Ferry was running; its last "
        f"lines ({tmp_path / 'db.log'}):")
    await database.stop()


class StartedCommands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.commands: list[dict] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.commands.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def test_ferrys_pool_lets_go_of_idle_connections_before_the_database_closes_them():
    from secantus.server import DEFAULT_CLIENT_IDLE_TIMEOUT_S
    client = pymongo.MongoClient(embedded_db.database_url(27017), connect=False)
    try:
        idle_s = client.options.pool_options.max_idle_time_seconds
    finally:
        client.close()
    assert idle_s is not None and idle_s <= DEFAULT_CLIENT_IDLE_TIMEOUT_S / 2


async def test_ferrys_writes_to_its_embedded_database_are_not_retryable_writes(
        mongo_url, tmp_path):
    port = int(mongo_url.split("/")[2].rsplit(":", 1)[1])
    listener = StartedCommands()
    client = pymongo.AsyncMongoClient(EmbeddedDatabase(":memory:", home=tmp_path, port=port).url,
                                      event_listeners=[listener])
    try:
        things = client.retry_writes_check.things
        await things.insert_one({"name": "a"})
        await things.update_one({"name": "a"}, {"$set": {"seen": True}})
        await things.find_one_and_update({"name": "a"}, {"$set": {"seen": False}})
    finally:
        await client.close()
    writes = [c for c in listener.commands if {"insert", "update", "findAndModify"} & set(c)]
    assert len(writes) == 3
    assert all("txnNumber" not in command for command in writes)
