"""Crash recovery: a release whose Ferry died is marked `interrupted`, keeping each host's
last known state, and its deploy lock is let go."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pymongo import ReturnDocument

from services.releases.locks import ACTIVE, DeployLock
from services.releases.records import tally
from services.store import Store, utcnow

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.registry.hosts import HostService

log = logging.getLogger("ferry.releases")


async def interrupt(doc: dict, store: Store, locks: DeployLock, hosts: HostService,
                    events: EventBus) -> None:
    """Mark `doc`'s release interrupted (unless it already ended), with counts from its
    host runs, which are what is known of a dead owner's progress."""
    now = utcnow()
    claimed = await store.releases.find_one_and_update(
        {"_id": doc["_id"], "state": {"$in": list(ACTIVE)}},
        {"$set": {"state": "interrupted", "finished_at": now,
                  "reason": "the Ferry process running it stopped"}},
        return_document=ReturnDocument.AFTER)
    if claimed is None:
        return
    await store.host_runs.update_many(
        {"release_id": doc["_id"], "state": "running"},
        {"$set": {"state": "interrupted", "reason": "Ferry stopped while this host ran"}})
    # The dead owner's counts lag its host runs; the host runs are what is known.
    runs = [run async for run in store.host_runs.find(
        {"release_id": doc["_id"]}, {"host": 1, "state": 1, "started_at": 1,
                                     "finished_at": 1})]
    counts = tally(run["state"] for run in runs)
    await store.releases.update_one({"_id": doc["_id"]}, {"$set": {"counts": counts}})
    await locks.release(doc["project"], doc["environment"], doc["_id"])
    await hosts.record_results(claimed, runs)
    log.warning("release %s marked interrupted", doc["_id"])
    await events.publish(f"release:{doc['_id']}", "release",
                         {"state": "interrupted", "counts": counts,
                          "reason": claimed["reason"]})
