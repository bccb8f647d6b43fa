"""Reading releases: one release with its host runs (waiting, if asked, until it settles),
the newest releases, a page of one host's log, and the last successful deploy. A release
running in this process is read from memory, which is ahead of the database for host
runs and log lines (never for the release's state); everything else from the database.
A release whose memory says it ended is shown once that end is stored everywhere.
Also how a release id is read from a path and how a release is shown (`public_release`).

Reads only: starting and changing releases is service.py's. May import: store, errors,
registry, releases.records.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING

from services.errors import NotFound
from services.registry.hosts import natural_key
from services.releases.records import ENDED, public_host_run
from services.store import Store

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.releases.run import ReleaseRun

HOST_LOG_PAGE = 5000
MAX_ID = 2**63 - 1  # release ids are the database's int64
# The run of a release in this process, or None when it does not run here.
LiveRun = Callable[[int], "ReleaseRun | None"]


def parse_release_id(text: str) -> int:
    """A release id as a user wrote it (a path part); one no release can have is unknown."""
    # isascii: "²".isdigit() is True, yet int("²") fails
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise NotFound(f"no release {text[:40]}")
    return int(text)


def public_release(doc: dict) -> dict:
    return {("id" if key == "_id" else key): value for key, value in doc.items()
            if key not in ("lease_expires_at",)}


class ReleaseReads:
    """What a release is and did, live while it runs here; it changes nothing."""

    def __init__(self, store: Store, events: EventBus, live: LiveRun,
                 end_wait_s: float) -> None:
        self.store = store
        self.events = events
        self.live = live
        self.end_wait_s = end_wait_s

    async def get(self, release_id: int, wait: float = 0.0) -> dict:
        """The release with every host's run (live from memory while it runs here), and
        `seq`: the event the snapshot is current to, for subscribing after it.
        `wait` > 0: first wait, at most that long, until it ends or pauses."""
        if wait > 0:
            await self._until_settled(release_id, wait)
        await self._until_end_is_stored(release_id)
        seq = await self.events.head(f"release:{release_id}")
        run = self.live(release_id)
        if run is not None:
            # Memory changes before its event is published, so this snapshot already
            # holds everything up to `seq` (events after it re-apply harmlessly).
            record = run.record
            release = dict(record.release, counts=record.counts())
            hosts = [public_host_run(host_run) for host_run in record.hosts.values()]
        else:
            release = await self.document(release_id)
            hosts = [public_host_run(doc) async for doc in self.store.host_runs.find(
                {"release_id": release_id})]
        result = public_release(release)
        result["host_runs"] = sorted(hosts, key=lambda host_run: natural_key(host_run["host"]))
        result["seq"] = seq
        return result

    async def _until_end_is_stored(self, release_id: int) -> None:
        """A run here whose memory already says it ended is still writing that end
        (host runs, events, lock, the hosts' last results): wait for it, so that a client
        that reads "ended" finds every other part of Ferry saying so too."""
        run = self.live(release_id)
        if run is None or run.release["state"] not in ENDED:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.ended.wait(), self.end_wait_s)

    async def _until_settled(self, release_id: int, wait: float) -> None:
        """Follow the release's topic (no database poll) until a `release` event says it
        is no longer pending or running, or `wait` seconds passed."""
        topic = f"release:{release_id}"
        after = await self.events.head(topic)     # before the state: nothing is missed
        run = self.live(release_id)
        state = run.release["state"] if run else (await self.document(release_id))["state"]
        deadline = asyncio.get_running_loop().time() + wait
        while state in ("pending", "running"):
            remaining = deadline - asyncio.get_running_loop().time()
            events = await self.events.wait(topic, after, remaining) if remaining > 0 else []
            if not events:
                return
            after = events[-1]["seq"]
            for event in events:
                if event["type"] == "release":
                    state = event["data"].get("state", state)

    async def list(self, project: str | None = None, limit: int = 50,
                   among: set[str] | None = None) -> dict:
        """Newest first, with the `wall` topic's seq to follow them live from; only
        releases of the projects `among` when it is given (what a user may see)."""
        wall_seq = await self.events.head("wall")
        query: dict[str, Any] = {"project": project} if project else {}
        if among is not None:
            query = {"project": {"$in": sorted(among & {project} if project else among)}}
        cursor = self.store.releases.find(query, {"hosts": 0, "batches": 0}).sort(
            "_id", DESCENDING).limit(max(1, min(limit, 500)))
        releases = []
        async for doc in cursor:
            run = self.live(doc["_id"])
            if run is not None:
                doc.update(state=run.release["state"], counts=run.record.counts())
            releases.append(public_release(doc))
        return {"releases": releases, "wall_seq": wall_seq}

    async def host_log(self, release_id: int, host: str, after: int = 0,
                       limit: int = HOST_LOG_PAGE) -> dict:
        """A page of one host's log: lines numbered after `after`, at most `limit`."""
        await self.document(release_id)
        limit = max(1, min(limit, HOST_LOG_PAGE))
        lines: list[dict] = []
        # Chunks that end at or before `after` are skipped by the query (`last_n`; older
        # chunks without it are filtered line by line), and read a few per round trip.
        query = {"release_id": release_id, "host": host,
                 "$or": [{"last_n": {"$gt": after}}, {"last_n": {"$exists": False}}]}
        async for chunk in self.store.host_logs.find(query).sort("seq", 1).batch_size(8):
            lines.extend(line for line in chunk["lines"] if line["n"] > after)
            if len(lines) > limit:
                break
        run = self.live(release_id)
        if run is not None and len(lines) <= limit:
            seen = lines[-1]["n"] if lines else after
            lines.extend(line for line in run.record.pending_log(host) if line["n"] > seen)
        page = lines[:limit]
        return {"release_id": release_id, "host": host, "lines": page,
                "next": page[-1]["n"] if page else after, "more": len(lines) > limit}

    async def last_success(self, project: str, environment: str,
                           before: int | None = None) -> dict | None:
        """The newest deploy (or retry) of the project that succeeded, before `before`."""
        query: dict[str, Any] = {"project": project, "environment": environment,
                                 "state": "succeeded", "kind": {"$in": ["deploy", "retry"]}}
        if before is not None:
            query["_id"] = {"$lt": before}
        return await self.store.releases.find_one(query, sort=[("_id", DESCENDING)])

    async def find(self, release_id: int) -> dict:
        """The release alone (no host runs); NotFound when there is none."""
        return public_release(await self.document(release_id))

    async def document(self, release_id: int) -> dict:
        """The release as stored; NotFound when there is none."""
        if not 0 < release_id <= MAX_ID:
            raise NotFound(f"no release {release_id}")
        doc = await self.store.releases.find_one({"_id": release_id})
        if doc is None:
            raise NotFound(f"no release {release_id}")
        return doc
