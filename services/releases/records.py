"""ReleaseRecord: the live state of one release, persisted in batches and published in order.

A 1,000-host release makes tens of thousands of state changes and log lines; writing each
one alone would swamp the database, so host runs and log lines are flushed together every
`log_flush_interval_s`, and release state changes are written at once.
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

from services.store import Store, utcnow

log = logging.getLogger("ferry.records")
HOST_STATES = ("pending", "running", "ok", "failed", "skipped", "cancelled", "rolled_back",
               "interrupted")
LOCAL = "_local"
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
                 flush_interval_s: float) -> None:
        self.store = store
        self.events = events
        self.release = release
        self.hosts = hosts
        self.topic = f"release:{release['_id']}"
        self.flush_interval_s = flush_interval_s
        self._dirty: set[str] = set(hosts)
        self._logs: dict[str, list[dict]] = {}
        self._logs_in_flight: dict[str, list[dict]] = {}
        self._flush_lock = asyncio.Lock()
        self._log_chunks: Counter[str] = Counter()
        self._log_lines: Counter[str] = Counter()
        self._outbox: list[tuple[str, dict]] = []
        self._wake = asyncio.Event()
        self._flush_now = asyncio.Event()
        self._last_wall = 0.0
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
        """Release state changes are rare and matter after a crash: written at once."""
        now = utcnow()
        changes = {"state": state, "counts": self.counts(), **fields}
        if state == "running" and not self.release.get("started_at"):
            changes["started_at"] = now
        if state in ("succeeded", "failed", "cancelled", "rolled_back", "interrupted"):
            changes["finished_at"] = now
            started = self.release.get("started_at") or self.release["created_at"]
            changes["duration_ms"] = int((now - started).total_seconds() * 1000)
        self.release.update(changes)
        await self.store.releases.update_one({"_id": self.id}, {"$set": changes})
        self.emit("release", {"state": state, "counts": changes["counts"],
                              **{k: v for k, v in fields.items() if k != "counts"}})
        await self._publish_wall(force=True)

    def local_stage(self, stage: str, state: str, *, duration_ms: int | None = None,
                    reason: str | None = None) -> None:
        entry = {"state": state}
        if state == "running":
            entry["started_at"] = utcnow()
        else:
            entry["duration_ms"] = duration_ms
            entry["reason"] = reason
        local = self.release.setdefault("local", {})
        local[stage] = {**local.get(stage, {}), **entry}
        self.emit("stage", {"host": LOCAL, "stage": stage, "state": state,
                            "duration_ms": duration_ms, "reason": reason})
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
            self._flush_now.set()
        self._dirty.add(host)
        self.emit("host", {"host": host, "state": state, "reason": reason,
                           "stage": run["stage"], **fields})

    def stage_start(self, host: str, stage: str) -> None:
        run = self.hosts[host]
        run["stage"] = stage
        run["stages"][stage] = {"state": "running", "started_at": utcnow()}
        self._dirty.add(host)
        self.emit("stage", {"host": host, "stage": stage, "state": "running"})

    def stage_end(self, host: str, stage: str, state: str, duration_ms: int,
                  reason: str | None = None) -> None:
        entry = self.hosts[host]["stages"].setdefault(stage, {})
        entry.update(state=state, duration_ms=duration_ms, reason=reason)
        self._dirty.add(host)
        self.emit("stage", {"host": host, "stage": stage, "state": state,
                            "duration_ms": duration_ms, "reason": reason})

    def log(self, host: str, stage: str, line: str) -> None:
        self._log_lines[host] += 1
        entry = {"n": self._log_lines[host], "ts": time.time(), "stage": stage, "line": line}
        self._logs.setdefault(host, []).append(entry)
        self.emit("log", {"host": host, **entry})

    def pending_log(self, host: str) -> list[dict]:
        """Log lines not yet in the database (being written, or waiting to be)."""
        return [*self._logs_in_flight.get(host, []), *self._logs.get(host, [])]

    def emit(self, type_: str, data: dict) -> None:
        """Queue an event; the publish loop sends them to the bus in this order."""
        self._outbox.append((type_, data))
        self._wake.set()

    # -- background work -----------------------------------------------------------

    async def _publish_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._publish_pending()
            await self._publish_wall()

    async def _publish_pending(self) -> None:
        while self._outbox:
            batch, self._outbox = self._outbox, []
            for type_, data in batch:
                await self.events.publish(self.topic, type_, data)

    async def _publish_wall(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_wall < WALL_INTERVAL_S:
            return
        self._last_wall = now
        release = self.release
        await self.events.publish("wall", "release", {
            "release_id": self.id, "project": release["project"],
            "environment": release["environment"], "kind": release["kind"],
            "ref": release["ref"], "sha": release.get("sha"), "state": release["state"],
            "total": len(self.hosts), "counts": self.counts()})

    async def _flush_loop(self) -> None:
        """Flush every interval, and at once when a host reaches a final state."""
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._flush_now.wait(), self.flush_interval_s)
            self._flush_now.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("could not persist %s; will retry", self.topic)

    async def flush(self) -> None:
        """Write dirty host runs and buffered log lines in one round of bulk writes."""
        async with self._flush_lock:
            await self._flush()

    async def _flush(self) -> None:
        dirty, self._dirty = self._dirty, set()
        logs, self._logs = self._logs, {}
        self._logs_in_flight = logs
        updates = [UpdateOne({"_id": self.hosts[host]["_id"]}, {"$set": self.hosts[host]},
                             upsert=True) for host in dirty if host != LOCAL]
        try:
            if dirty:
                # The release's counts follow its host runs, one flush behind at most.
                await self.store.releases.update_one(
                    {"_id": self.id}, {"$set": {"local": self.release.get("local", {}),
                                                "counts": self.counts()}})
            if updates:
                await self.store.host_runs.bulk_write(updates, ordered=False)
            chunks = []
            for host, lines in logs.items():
                self._log_chunks[host] += 1
                chunks.append({"release_id": self.id, "host": host,
                               "seq": self._log_chunks[host], "lines": lines})
            if chunks:
                await self.store.host_logs.insert_many(chunks, ordered=False)
        except Exception:
            self._dirty |= dirty
            for host, lines in logs.items():
                self._logs[host] = lines + self._logs.get(host, [])
            raise
        finally:
            self._logs_in_flight = {}
