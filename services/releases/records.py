"""ReleaseRecord: the live state of one release, persisted in batches and published in order.

A 1,000-host release makes tens of thousands of state changes and log lines; writing each
one alone would swamp the database, so host runs and log lines are flushed together every
`log_flush_interval_s`, and release state changes are written at once. A flush writes
only what changed since it was stored (the embedded database spends ~3 ms of CPU on each
document it updates): the release document only when its counts, local stages or
lost-line count changed, and a host run when its state changed or its `release` stage
(the switch) began, which a crash must not lose (recovery and rollback plan from them).
Its other stage progress (a stage's start and end, what the pipeline reported) rides
along with such a write, or is written once `host_progress_write_interval_s` has passed
since the host run was last written: live readers see it at once anyway (events, and
the API reads a release running here from memory). Log lines go
through a HostLogWriter (logstore.py): bounded chunk documents, idempotent retries, and
lines it cannot store are counted (`log_lines_lost`), never fatal to the release.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from pymongo import UpdateOne

from services.releases.logstore import HostLogWriter
from services.settings import Settings
from services.store import Store, describe_db_error, utcnow

log = logging.getLogger("ferry.records")
HOST_STATES = ("pending", "running", "ok", "failed", "skipped", "cancelled", "rolled_back",
               "interrupted")
LOCAL = "_local"
ENDED = ("succeeded", "failed", "cancelled", "rolled_back", "interrupted")
WALL_INTERVAL_S = 0.5


def new_host_run(release_id: int, host: str, batch: int) -> dict:
    return {"_id": f"{release_id}:{host}", "release_id": release_id, "host": host,
            "batch": batch, "state": "pending", "stage": None, "reason": None,
            "stages": {}, "previous": None, "started_at": None, "finished_at": None}


def tally(states: Iterable[str]) -> dict[str, int]:
    """How many hosts are in each state: a release's `counts`."""
    counts = Counter(states)
    return {state: counts.get(state, 0) for state in HOST_STATES}


def switched(run: dict) -> bool:
    """Whether a release (may have) moved this host's `current`: its atomic switch ran to
    the end, or was cut off mid-way (cancelled, or Ferry died: either side is possible).
    A host its own release already switched back (`rolled_back`) is back where it was."""
    stage = (run.get("stages") or {}).get("release") or {}
    return stage.get("state") in ("ok", "running", "cancelled") and run["state"] != "rolled_back"


def public_host_run(run: dict) -> dict:
    return {key: value for key, value in run.items() if key not in ("_id", "release_id")}


class ReleaseRecord:
    """Owns a release document and its host runs while the release runs in this process."""

    def __init__(self, store: Store, events: Any, release: dict, hosts: dict[str, dict],
                 settings: Settings, *, stored: bool = False) -> None:
        """`stored`: the release and its host runs are in the database as given (just
        inserted, or read back to resume), so the first flush need not write them again."""
        self.store = store
        self.events = events
        self.release = release
        self.hosts = hosts
        self.topic = f"release:{release['_id']}"
        self.flush_interval_s = settings.log_flush_interval_s
        self.progress_interval_s = settings.host_progress_write_interval_s
        # Host runs (and LOCAL: the release document) to write at the next flush, and
        # host runs with only stage progress to write, due progress_interval_s after
        # their last write (monotonic times in _written_at).
        self._dirty: set[str] = set() if stored else set(hosts)
        self._progress: set[str] = set()
        self._written_at: dict[str, float] = {}
        # The counts last written to the release document: a flush writes it only when
        # they, the local stages or the lost-line count changed (LOCAL in _dirty).
        self._counts_written: dict[str, int] | None = None
        self._logs: dict[str, list[dict]] = {}
        self._logs_waiting = 0
        self._logs_waiting_max = settings.log_pending_max_lines
        self._log_writer = HostLogWriter(store.host_logs, release["_id"], settings)
        self._logs_lost: Counter[str] = Counter()
        self._flush_lock = asyncio.Lock()
        self._log_lines: Counter[str] = Counter()
        self._outbox: list[tuple[str, dict]] = []
        self._backlog_max_lines = settings.record_backlog_max_lines
        self._outbox_max_events = settings.record_outbox_max_events
        self._drained = asyncio.Event()      # set whenever a flush or a publish finishes
        self._wake = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._last_wall = 0.0
        self._wall_hosts: set[str] = set(hosts)   # hosts changed since the last wall event
        self._tasks: list[asyncio.Task] = []

    @property
    def id(self) -> int:
        return self.release["_id"]

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._flush_loop(), name=f"flush {self.topic}"),
                       asyncio.create_task(self._publish_loop(), name=f"publish {self.topic}")]

    async def close(self) -> None:
        """Publish and persist everything still pending, then stop the background tasks."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._publish_pending()
        await self.flush()
        await self._publish_wall(force=True)

    def counts(self) -> dict[str, int]:
        return tally(run["state"] for run in self.hosts.values())

    # -- state changes -------------------------------------------------------------

    async def set_state(self, state: str, **fields: Any) -> None:
        """Release state changes are rare and matter after a crash: written at once. An
        end is written after every host run: the database never says a release ended
        while its host runs still say otherwise (a retry or rollback plans from them)."""
        if state in ENDED:
            try:
                await self.flush()
            except Exception as error:      # the state itself is still written (or tried)
                log.warning("could not persist %s before its end: %s", self.topic,
                            describe_db_error(error))
        now = utcnow()
        changes = {"state": state, "counts": self.counts(), **fields}
        if state == "running" and not self.release.get("started_at"):
            changes["started_at"] = now
        if state in ENDED:
            changes["finished_at"] = now
            started = self.release.get("started_at") or self.release["created_at"]
            changes["duration_ms"] = int((now - started).total_seconds() * 1000)
        # Stored before it shows in memory: whatever acts on a state read here (a
        # rollback, a retry) finds the database saying the same.
        try:
            await self.store.releases.update_one({"_id": self.id}, {"$set": changes})
        finally:
            self.release.update(changes)
        self._counts_written = changes["counts"]
        self.emit("release", {"state": state, "counts": changes["counts"],
                              **{k: v for k, v in fields.items() if k != "counts"}})
        await self._publish_wall(force=True)

    def local_stage(self, stage: str, state: str, *, duration_ms: int | None = None,
                    reason: str | None = None, cached_from: int | None = None) -> None:
        """`cached_from`: the release whose artifact a skipped stage reuses."""
        entry: dict[str, Any] = {"state": state}
        if state == "running":
            entry["started_at"] = utcnow()
        else:
            entry["duration_ms"] = duration_ms
            entry["reason"] = reason
        extra = {} if cached_from is None else {"cached_from": cached_from}
        local = self.release.setdefault("local", {})
        local[stage] = {**local.get(stage, {}), **entry, **extra}
        self.emit("stage", {"host": LOCAL, "stage": stage, "state": state,
                            "duration_ms": duration_ms, "reason": reason, **extra})
        self._dirty.add(LOCAL)

    def host_state(self, host: str, state: str, *, reason: str | None = None,
                   **fields: Any) -> None:
        run = self.hosts[host]
        run["state"] = state
        run["reason"] = reason
        run.update(fields)
        now = utcnow()
        if state == "running" and run["started_at"] is None:
            run["started_at"] = now
        if state not in ("pending", "running"):
            run["finished_at"] = now
        self._dirty.add(host)
        self._wall_hosts.add(host)
        self.emit("host", {"host": host, "state": state, "reason": reason,
                           "stage": run["stage"], **fields})

    def stage_start(self, host: str, stage: str) -> None:
        run = self.hosts[host]
        run["stage"] = stage
        run["stages"][stage] = {"state": "running", "started_at": utcnow()}
        # The switch may move `current` from here on: stored as soon as a state change.
        (self._dirty if stage == "release" else self._progress).add(host)
        self._wall_hosts.add(host)
        self.emit("stage", {"host": host, "stage": stage, "state": "running"})

    def stage_end(self, host: str, stage: str, state: str, duration_ms: int,
                  reason: str | None = None) -> None:
        entry = self.hosts[host]["stages"].setdefault(stage, {})
        entry.update(state=state, duration_ms=duration_ms, reason=reason)
        self._progress.add(host)
        self.emit("stage", {"host": host, "stage": stage, "state": state,
                            "duration_ms": duration_ms, "reason": reason})

    def host_report(self, host: str, **report: Any) -> None:
        """What a host's pipeline learnt (`previous`, `upload_skipped`): see HostSink."""
        self.hosts[host].update(report)
        self._progress.add(host)

    def log(self, host: str, stage: str, line: str) -> None:
        self._log_lines[host] += 1
        entry = {"n": self._log_lines[host], "ts": time.time(), "stage": stage, "line": line}
        if self._logs_waiting + self._log_writer.waiting < self._logs_waiting_max:
            self._logs.setdefault(host, []).append(entry)
            self._logs_waiting += 1
        else:   # the database is far behind: bounded memory first, the loss is counted
            self._lost_lines(Counter({host: 1}))
        self.emit("log", {"host": host, **entry})

    def pending_log(self, host: str) -> list[dict]:
        """Log lines not yet in the database (being written, or waiting to be)."""
        return [*self._log_writer.pending(host), *self._logs.get(host, [])]

    def _lost_lines(self, lost: Counter[str]) -> None:
        """Count log lines that could not be stored, on the host run and the release."""
        for host, count in lost.items():
            self._logs_lost[host] += count
            self.release["log_lines_lost"] = self.release.get("log_lines_lost", 0) + count
            if host in self.hosts:
                self.hosts[host]["log_lines_lost"] = self._logs_lost[host]
                self._progress.add(host)
        self._dirty.add(LOCAL)

    def backlogged(self) -> bool:
        """More waits for the database or the bus than the release may hold in memory."""
        return (self._logs_waiting + self._log_writer.waiting > self._backlog_max_lines
                or len(self._outbox) > self._outbox_max_events)

    async def room(self) -> None:
        """Back-pressure: wait until the backlog is under its limits. The release calls this
        before each host step, so a slow or stopped database slows the release down
        instead of growing memory; nothing is dropped while it waits."""
        while self.backlogged():
            self._drained.clear()
            self._wake.set()
            self._flush_now.set()
            await self._drained.wait()

    def emit(self, type_: str, data: dict) -> None:
        """Queue an event; the publish loop sends them to the bus in this order."""
        self._outbox.append((type_, data))
        self._wake.set()

    # -- background work -----------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            due = self._wall_due_in()
            if due is None:
                await self._wake.wait()
            else:       # host changes held back by the wall's interval: due even if all
                with contextlib.suppress(TimeoutError):   # goes quiet (a long hook)
                    await asyncio.wait_for(self._wake.wait(), due)
            self._wake.clear()
            await self._publish_pending()
            await self._publish_wall()

    def _wall_due_in(self) -> float | None:
        """Seconds until the hosts changed since the last wall event are due on the wall;
        None when none changed."""
        if not self._wall_hosts:
            return None
        return max(0.0, self._last_wall + WALL_INTERVAL_S - time.monotonic())

    async def _publish_pending(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            for type_, data in batch:
                await self.events.publish(self.topic, type_, data)
        self._drained.set()

    async def _publish_wall(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_wall < WALL_INTERVAL_S:
            return
        self._last_wall = now
        release = self.release
        # The wall's host tiles: each host changed since the last wall event, once, with
        # its latest state and stage (coalesced per host, see services/wall/).
        changed, self._wall_hosts = self._wall_hosts, set()
        await self.events.publish("wall", "release", {
            "release_id": self.id, "project": release["project"],
            "environment": release["environment"], "kind": release["kind"],
            "ref": release["ref"], "sha": release.get("sha"), "state": release["state"],
            "total": len(self.hosts), "counts": self.counts(),
            "created_by": release.get("created_by"), "started_at": release.get("started_at"),
            "finished_at": release.get("finished_at"),
            "duration_ms": release.get("duration_ms"),
            "hosts": {host: [self.hosts[host]["state"], self.hosts[host]["stage"]]
                      for host in changed if host in self.hosts}})

    async def _flush_loop(self) -> None:
        """Flush every interval, and at once when back-pressure asks for room."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_interval_s)
            self._flush_now.clear()
            try:
                async with self._flush_lock:
                    await self._flush(wait_for_logs=False, all_progress=False)
            except Exception as error:
                log.warning("could not persist %s: %s; will retry", self.topic,
                            describe_db_error(error))
            finally:
                self._drained.set()

    async def flush(self) -> None:
        """Write buffered log lines, then dirty host runs, in a few bulk writes.

        Log writes that fail are retried here (with back-off, bounded) and what cannot be
        stored is counted, so this raises only when the host runs cannot be written."""
        async with self._flush_lock:
            await self._flush(wait_for_logs=True, all_progress=True)

    def _take_dirty(self, all_progress: bool) -> set[str]:
        """What this flush writes: every state change, and the stage progress that is
        due (all of it when `all_progress`)."""
        now = time.monotonic()
        due = self._progress if all_progress else {
            host for host in self._progress if host not in self._written_at
            or now - self._written_at[host] >= self.progress_interval_s}
        dirty, self._dirty = self._dirty | due, set()
        self._progress -= dirty
        for host in dirty:
            self._written_at[host] = now
        return dirty

    async def _flush(self, *, wait_for_logs: bool, all_progress: bool) -> None:
        logs, self._logs = self._logs, {}
        self._logs_waiting = 0
        self._log_writer.add(logs)
        lost = await self._log_writer.write(wait=wait_for_logs)
        if lost:
            self._lost_lines(lost)
        dirty = self._take_dirty(all_progress)
        updates = [UpdateOne({"_id": self.hosts[host]["_id"]}, {"$set": self.hosts[host]},
                             upsert=True) for host in dirty if host != LOCAL]
        counts = self.counts()
        try:
            if LOCAL in dirty or (dirty and counts != self._counts_written):
                # The release's counts follow its host runs, one flush behind at most.
                changes = {"local": self.release.get("local", {}), "counts": counts}
                if self._logs_lost:
                    changes["log_lines_lost"] = self.release["log_lines_lost"]
                await self.store.releases.update_one({"_id": self.id}, {"$set": changes})
                self._counts_written = counts
            if updates:
                await self.store.host_runs.bulk_write(updates, ordered=False)
        except Exception:
            self._dirty |= dirty | {LOCAL}
            raise
