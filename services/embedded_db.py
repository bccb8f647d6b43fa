"""The embedded SecantusDB server as Ferry's child process: durable, isolated, logged.

Why it is started the way it is:

- **Durable.** SecantusDB's default (like mongod's `j: false`) acknowledges a write once its
  journal record is in WiredTiger's in-process buffer: a SIGKILL of the database lost 9-16
  of 1,000 acknowledged inserts in every run. Ferry's config turns on `sync_on_commit`, so
  every commit reaches the journal on disk before it is acknowledged (docs/benchmarks.md,
  "Durability", has the figures and why this beats `j: true` on each write).
- **Isolated.** Without `--config`, SecantusDB reads `./secantusd.toml`,
  `~/.secantus/secantusd.toml` or `/etc/secantus/secantusd.toml`, and an inherited
  `SECANTUS_TEST_FAST_STORAGE=1` (or `WIREDTIGER_CONFIG`) turns its durable storage off. So
  Ferry writes every option into `<data-dir>/db.toml`, passes it with `--config`, runs
  Python isolated (`-I`: no `PYTHON*` variables, no user site, no working directory on the
  path) in `<data-dir>`, and gives it an environment built from nothing.
- **Logged.** Its output goes to `<data-dir>/db.log`; when it fails to start, its last
  lines are in the error, not just an exit status.
- **Never orphaned.** The kernel kills it when Ferry dies, even by SIGKILL; a stop that
  hangs escalates from SIGTERM to SIGKILL (safe: every acknowledged write is on disk).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pymongo import AsyncMongoClient

from services.settings import Settings

log = logging.getLogger("ferry.db")
PR_SET_PDEATHSIG = 1
# The only variables the child gets from Ferry's environment (log timestamps' zone).
PASSED_THROUGH = ("TZ",)
SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


class EmbeddedDatabaseError(RuntimeError):
    """The embedded database could not be started; the message says why, in its words."""


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port the OS considers free right now on `address`."""
    with socket.socket() as sock:
        sock.bind((address, 0))
        return sock.getsockname()[1]


# SecantusDB closes a client's connection once it has been idle 300 s (a fixed value, no
# setting changes it). Without retryable writes nothing would retry a write sent on a
# pooled connection the server closed a moment before, so Ferry's pool lets go of its
# idle connections well before that.
POOL_MAX_IDLE_MS = 60_000


def database_url(port: int, *, journal: bool = False) -> str:
    """How Ferry connects to an embedded database on `port`. Retryable writes are off:
    they exist to survive a replica set's failover, and this is one local child process
    with nothing to fail over to; a write whose reply is lost raises, as Ferry's own
    idempotent retries expect (the log writer's). And SecantusDB keeps a record of every
    retryable write for 30 minutes, up to 10,000, and scans them all (past the cap, sorts
    them) on each write: 10 % of its CPU during a release to 2,000 hosts."""
    journal_option = "&journal=true" if journal else ""
    return (f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
            f"&maxIdleTimeMS={POOL_MAX_IDLE_MS}{journal_option}")


def _die_with_parent(parent_pid: int) -> None:
    """In the child, before exec: be killed when Ferry dies, even by SIGKILL (Linux).

    SIGKILL rather than SIGTERM: SecantusDB's SIGTERM handler has been seen to hang in a
    futex wait, and a child that outlives Ferry keeps the data directory locked. Nothing
    acknowledged is lost, since every commit is already on disk."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:   # Ferry died between fork and prctl
        os._exit(1)


def toml_string(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's, for the characters json emits)."""
    return json.dumps(value, ensure_ascii=False)


def render_config(*, port: int, storage_path: str, log_level: str, cache_size: str,
                  sync_on_commit: bool) -> str:
    """The whole `secantusd.toml`: every option explicit, so no default can drift."""
    flag = "true" if sync_on_commit else "false"
    return "\n".join([
        "# Written by Ferry each time it starts the embedded database; edits are replaced.",
        "# Ferry's settings (docs/configuration.md) are where these values come from.",
        "[server]",
        'host = "127.0.0.1"',
        f"port = {int(port)}",
        f"storage_path = {toml_string(storage_path)}",
        f"log_level = {toml_string(log_level)}",
        "auth = false",
        "standalone = false",
        "enable_test_commands = false",
        "",
        "[oplog]",
        "retention_seconds = 3600.0",
        "max_entries = 100000",
        "noop_heartbeat_seconds = 0.0",
        "",
        "[storage]",
        f"cache_size = {toml_string(cache_size)}",
        "session_max = 1000",
        "ttl_sweep_seconds = 60.0",
        f"sync_on_commit = {flag}",
        "",
        "[tls]",
        "require_client_cert = false",
        "",
    ])


def child_environment(home: Path) -> dict[str, str]:
    """Built, not inherited: nothing in Ferry's environment can change how data is stored."""
    env = {"PATH": SEARCH_PATH, "HOME": str(home), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update({name: os.environ[name] for name in PASSED_THROUGH if name in os.environ})
    return env


def log_tail(path: Path, start: int, lines: int, max_bytes: int = 64 * 1024) -> list[str]:
    """The last `lines` lines written to `path` after offset `start`."""
    try:
        with path.open("rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(start, size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in text.splitlines() if line.strip()][-lines:]


class EmbeddedDatabase:
    """SecantusDB on 127.0.0.1 with data under `storage_path` (":memory:" for throwaway).

    `home` holds `db.toml` and `db.log` (a temporary directory for ":memory:"). With
    `journal=True` the URL asks for `j: true` on every write (benchmarks compare it with
    `sync_on_commit`; Ferry uses the latter). `keep_fds` are inherited by the child: the
    data directory's lock, so it is held until the database is gone too.
    """

    def __init__(self, storage_path: Path | str, *, home: Path | None = None,
                 port: int | None = None, sync_on_commit: bool = True, journal: bool = False,
                 start_timeout_s: float = 60.0, stop_timeout_s: float = 5.0,
                 log_level: str = "WARNING", cache_size: str = "1G",
                 log_tail_lines: int = 20, log_max_bytes: int = 10 * 1024 * 1024,
                 keep_fds: tuple[int, ...] = ()) -> None:
        self.storage_path = str(storage_path)
        self.memory = self.storage_path == ":memory:"
        if not self.memory:
            self.storage_path = str(Path(storage_path).resolve())
        self._tempdir: str | None = None
        if home is None and not self.memory:
            home = Path(self.storage_path).parent
        self.home: Path | None = Path(home).resolve() if home else None   # set by start()
        self.port = port or free_port()
        self.sync_on_commit = sync_on_commit
        self.journal = journal
        self.start_timeout_s = start_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_level = log_level
        self.cache_size = cache_size
        self.log_tail_lines = log_tail_lines
        self.log_max_bytes = log_max_bytes
        self.keep_fds = keep_fds
        self.process: asyncio.subprocess.Process | None = None
        self._log_start = 0
        self._watcher: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return database_url(self.port, journal=self.journal)

    @property
    def config_path(self) -> Path:
        return self.home / "db.toml"

    @property
    def log_path(self) -> Path:
        return self.home / "db.log"

    async def start(self) -> str:
        """Start the child; return its URL once it answers, and is the process started."""
        self._prepare()
        with self._open_log() as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-I", "-m", "secantus", "--config", str(self.config_path),
                stdin=asyncio.subprocess.DEVNULL, stdout=log_file, stderr=log_file,
                cwd=str(self.home), env=child_environment(self.home),
                start_new_session=True, pass_fds=self.keep_fds,
                preexec_fn=lambda parent=os.getpid(): _die_with_parent(parent))
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise
        log.info("embedded database on 127.0.0.1:%s (pid %s, log %s)", self.port,
                 self.process.pid, self.log_path)
        self._watcher = asyncio.create_task(self._watch(self.process), name="embedded db")
        return self.url

    async def _watch(self, process: asyncio.subprocess.Process) -> None:
        """Say so, with its last lines, if the database exits while Ferry still uses it."""
        await process.wait()
        if self.process is process:
            log.error("%s", self._failure(f"exited with status {process.returncode} while "
                                          "Ferry was running"))

    def _prepare(self) -> None:
        """Refuse a storage-changing WiredTiger.config; write db.toml (0600, atomically)."""
        if self.home is None:
            self._tempdir = tempfile.mkdtemp(prefix="ferry-db-")
            self.home = Path(self._tempdir)
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.memory:
            storage = Path(self.storage_path)
            storage.mkdir(parents=True, exist_ok=True)
            override = storage / "WiredTiger.config"
            if override.exists():
                raise EmbeddedDatabaseError(
                    f"{override} would change how the embedded database stores Ferry's data; "
                    f"remove it (Ferry writes the database's whole configuration to "
                    f"{self.config_path})")
        text = render_config(port=self.port, storage_path=self.storage_path,
                             log_level=self.log_level, cache_size=self.cache_size,
                             sync_on_commit=self.sync_on_commit)
        partial = self.config_path.with_name(self.config_path.name + ".tmp")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(partial, self.config_path)

    def _open_log(self):
        """db.log in append mode (the previous one kept as db.log.1 once it grows large)."""
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > self.log_max_bytes:
                os.replace(self.log_path, self.log_path.with_name("db.log.1"))
        fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        handle = os.fdopen(fd, "ab")
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        handle.write(f"---- {stamp} Ferry starts the embedded database on 127.0.0.1:"
                     f"{self.port} with {self.config_path}\n".encode())
        handle.flush()
        self._log_start = handle.tell()
        return handle

    async def _wait_ready(self) -> None:
        client = AsyncMongoClient(self.url, serverSelectionTimeoutMS=500)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.start_timeout_s
        try:
            while True:
                if self.process.returncode is not None:
                    raise self._failure(f"exited with status {self.process.returncode}")
                try:
                    status = await client.admin.command("serverStatus")
                except Exception:
                    if loop.time() > deadline:
                        raise self._failure(
                            f"did not answer within {self.start_timeout_s:g} s") from None
                    await asyncio.sleep(0.1)
                    continue
                if status.get("pid") != self.process.pid:
                    raise self._failure(f"port {self.port} is answered by another server "
                                        f"(pid {status.get('pid')}), not by the one started")
                return
        finally:
            await client.close()

    def _failure(self, what: str) -> EmbeddedDatabaseError:
        lines = log_tail(self.log_path, self._log_start, self.log_tail_lines)
        shown = "".join(f"\n  | {line}" for line in lines) or "\n  | (it wrote nothing)"
        return EmbeddedDatabaseError(
            f"the embedded database {what}; its last lines ({self.log_path}):{shown}")

    async def stop(self) -> None:
        """SIGTERM (a clean checkpoint), then SIGKILL after `stop_timeout_s`."""
        process, self.process = self.process, None
        watcher, self._watcher = self._watcher, None
        try:
            if process is not None and process.returncode is None:
                process.terminate()
                try:
                    await asyncio.wait_for(process.wait(), self.stop_timeout_s)
                except TimeoutError:
                    log.warning("the embedded database did not stop within %g s of SIGTERM; "
                                "killing it (every acknowledged write is already on disk)",
                                self.stop_timeout_s)
                    process.kill()
                    await process.wait()
            if watcher is not None:
                await watcher
        finally:
            if self._tempdir:
                shutil.rmtree(self._tempdir, ignore_errors=True)
                self._tempdir = self.home = None

    async def __aenter__(self) -> EmbeddedDatabase:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()


def for_settings(settings: Settings, keep_fds: tuple[int, ...] = ()) -> EmbeddedDatabase:
    """Ferry's embedded database: `<data-dir>/db`, with db.toml and db.log beside it."""
    return EmbeddedDatabase(
        settings.embedded_db_dir, home=settings.data_dir, keep_fds=keep_fds,
        start_timeout_s=settings.embedded_db_start_timeout_s,
        stop_timeout_s=settings.embedded_db_stop_timeout_s,
        log_level=settings.embedded_db_log_level, cache_size=settings.embedded_db_cache_size,
        log_tail_lines=settings.embedded_db_log_tail_lines,
        log_max_bytes=settings.embedded_db_log_max_bytes)
