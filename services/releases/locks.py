"""The deploy lock: one active release per project and environment, as a lease in the
database (atomic insert or find-and-update); only its owner lets it go, and taking over a
stale one is explicit and logged."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.errors import Conflict
from services.settings import Settings
from services.store import Store, utcnow

log = logging.getLogger("ferry.releases")
ACTIVE = ("pending", "running", "paused")
# A lease whose release has already ended is being let go by its owner (the final state is
# written a moment before the lock is released): wait this long for it before a 409.
SETTLE_S, SETTLE_STEP_S = 2.0, 0.05


class DeployLock:
    """The `deploy:<project>:<environment>` leases."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings

    async def acquire(self, project: str, environment: str, release_id: int,
                      take_over: bool) -> dict | None:
        """Take the lock for `release_id`; Conflict if held. Returns what was taken over."""
        key = f"deploy:{project}:{environment}"
        now = utcnow()
        lease = {"release_id": release_id, "owner": self.settings.instance_id,
                 "acquired_at": now,
                 "expires_at": now + timedelta(seconds=self.settings.lease_ttl_s)}
        try:
            await self.store.leases.insert_one({"_id": key, **lease})
            return None
        except DuplicateKeyError:
            pass
        held = await self.check(project, environment, take_over)
        if held is None:
            return await self.acquire(project, environment, release_id, take_over)
        taken = await self.store.leases.find_one_and_update(
            {"_id": key, "release_id": held["release_id"], "expires_at": held["expires_at"]},
            {"$set": lease}, return_document=ReturnDocument.AFTER)
        if taken is None:
            raise Conflict(f"{project} ({environment}) was locked by someone else meanwhile")
        log.warning("release %s took over the stale lock of release %s", release_id,
                    held["release_id"])
        return {"release_id": held["release_id"], "owner": held["owner"], "at": now}

    async def check(self, project: str, environment: str, take_over: bool) -> dict | None:
        """The lease holding the lock, if any: Conflict unless it is stale and take_over."""
        key = f"deploy:{project}:{environment}"
        for _ in range(int(SETTLE_S / SETTLE_STEP_S)):
            held = await self.store.leases.find_one({"_id": key})
            if held is None:
                return None
            holder = await self.store.releases.find_one({"_id": held["release_id"]}) or {}
            if not holder or holder["state"] in ACTIVE or held["expires_at"] <= utcnow():
                break
            await asyncio.sleep(SETTLE_STEP_S)
        who = (f"release {held['release_id']} ({holder.get('kind', 'deploy')} of "
               f"{holder.get('ref', '?')} by {holder.get('created_by', '?')})")
        if held["expires_at"] > utcnow():
            raise Conflict(f"{project} ({environment}) is locked by {who}")
        if not take_over:
            raise Conflict(f"{project} ({environment}) has a stale lock from {who}, last "
                           f"renewed {held['expires_at'].isoformat()}; pass take_over: true "
                           "to take it over")
        return held

    async def release(self, project: str, environment: str, release_id: int) -> None:
        """Let the lock go, only if `release_id` holds it."""
        await self.store.leases.delete_one(
            {"_id": f"deploy:{project}:{environment}", "release_id": release_id})

    async def renew(self, release_ids: list[int]) -> None:
        """Renew this instance's leases: its releases' ownership and their deploy locks."""
        if not release_ids:
            return
        expires = utcnow() + timedelta(seconds=self.settings.lease_ttl_s)
        owner = self.settings.instance_id
        await self.store.releases.update_many(
            {"_id": {"$in": release_ids}, "owner": owner},
            {"$set": {"lease_expires_at": expires}})
        await self.store.leases.update_many(
            {"release_id": {"$in": release_ids}, "owner": owner},
            {"$set": {"expires_at": expires}})
