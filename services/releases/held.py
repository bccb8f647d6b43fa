"""Held releases moving on: what happens to a `scheduled` or `awaiting_approval` release
after it was stored, until it starts or ends.

Owns, for every held release, its timer (schedule.py's `Timers`, re-armed from `due_at`
at start-up), its per-release lock (one change at a time in this process), resolving the
commit approvers see, and each move through the gates as they stand when it comes due:
approval, then freezes, then the deploy lock (see gates.py for the whole story). Every
change is an atomic update from the state the release was read in, published on
`release:<id>`. gates.py holds the verbs users call; this module holds what they and the
timers share.

May import: settings, store, errors, team, releases (freeze, schedule, reads).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pymongo import ASCENDING, ReturnDocument

from services.errors import Conflict, FerryError, NotFound, Unavailable
from services.releases.freeze import Freeze, active
from services.releases.reads import public_release
from services.releases.schedule import Timers
from services.settings import Settings
from services.store import Store, utcnow
from services.team.audit import FERRY, AuditLog

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.git.mirrors import GitService
    from services.registry.projects import ProjectService
    from services.releases.service import ReleaseService

HELD = ("scheduled", "awaiting_approval")


def frozen_message(project: str, freeze: Freeze) -> str:
    return (f"{project} is frozen: {freeze.describe()}; an admin may override with "
            "override_freeze: \"<reason>\"")


def approval_fields(rules: dict, now: datetime) -> dict:
    """The fields of a release that starts awaiting approval under `rules` at `now`."""
    deadline = now + timedelta(seconds=rules["expires_s"])
    return {"state": "awaiting_approval", "due_at": deadline,
            "approval": {"rules": rules, "approvals": [], "rejection": None,
                         "since": now, "deadline": deadline, "approved_at": None}}


class HeldReleases:
    """Timers, locks and gate moves of the releases that wait."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 releases: ReleaseService, projects: ProjectService, git: GitService,
                 audit: AuditLog) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.releases = releases
        self.projects = projects
        self.git = git
        self.audit = audit
        self.timers = Timers(self._due)
        self._locks: dict[int, asyncio.Lock] = {}
        self._resolving: set[asyncio.Task] = set()

    async def open(self) -> None:
        """Re-arm every held release from its stored due time (past ones fire at once)."""
        await self.store.releases.create_index([("state", ASCENDING), ("due_at", ASCENDING)])
        async for doc in self.store.releases.find({"state": {"$in": list(HELD)}},
                                                  {"_id": 1, "due_at": 1, "state": 1, "sha": 1,
                                                   "resolve_error": 1}):
            self.timers.arm(doc["_id"], doc.get("due_at") or utcnow())
            if doc["state"] == "awaiting_approval" and not (doc.get("sha")
                                                            or doc.get("resolve_error")):
                self.resolve_later(doc["_id"])      # cut off by the last stop

    async def close(self) -> None:
        await self.timers.close()
        for task in list(self._resolving):
            task.cancel()
        await asyncio.gather(*self._resolving, return_exceptions=True)

    def lock(self, release_id: int) -> asyncio.Lock:
        """The lock that keeps changes of one held release one at a time."""
        lock = self._locks.get(release_id)
        if lock is None:
            if len(self._locks) > self.settings.gate_max_waiting:
                self._locks = {key: value for key, value in self._locks.items()
                               if value.locked()}
            lock = self._locks[release_id] = asyncio.Lock()
        return lock

    async def doc(self, release_id: int) -> dict:
        """The release as stored; NotFound when there is none."""
        doc = await self.store.releases.find_one({"_id": release_id})
        if doc is None:
            raise NotFound(f"no release {release_id}")
        return doc

    # -- moving on ----------------------------------------------------------------------

    async def _due(self, release_id: int) -> None:
        """A held release's timer fired: expire it, or take it through its gates."""
        async with self.lock(release_id):
            doc = await self.store.releases.find_one({"_id": release_id})
            if doc is None or doc["state"] not in HELD:
                return
            if doc.get("due_at") and doc["due_at"] > utcnow():      # moved meanwhile
                self.timers.arm(release_id, doc["due_at"])
                return
            if doc["state"] == "awaiting_approval" and not doc["approval"].get("approved_at"):
                approval = doc["approval"]
                got = len(approval["approvals"])
                await self.end(doc, "expired", f"approval expired after "
                               f"{approval['rules']['expires_s']} s ({got} of "
                               f"{approval['rules']['required']} approvals)", {})
                await self.audit.record(FERRY, "release.expire", str(release_id),
                                        project=doc["project"])
                return
            release = await self.advance(doc)
            if release["state"] not in HELD:
                await self.audit.record(FERRY, "release.due", str(release_id),
                                        project=doc["project"],
                                        details={"state": release["state"]})

    async def advance(self, doc: dict, *, override: dict | None = None,
                      strict: bool = False) -> dict:
        """Take a held release through approval, freezes and the lock as they stand now.
        `strict` (a user's "start now"): a freeze or the lock is a Conflict, not a wait."""
        release_id = doc["_id"]
        try:
            project = await self.projects.get(doc["project"])
        except NotFound as error:
            return await self.end(doc, "failed", str(error), {})
        now = utcnow()
        rules = project.get("approval")
        if rules and not (doc.get("approval") or {}).get("approved_at"):
            if doc["state"] == "awaiting_approval":
                return public_release(doc)
            doc = await self._move(doc, approval_fields(rules, now))
            self.resolve_later(release_id)
            return doc
        override = override or doc.get("override_freeze")
        freeze = active(project.get("freezes"), now)
        if freeze and not override:
            if strict:
                raise Conflict(frozen_message(project["name"], freeze))
            return await self._move(doc, {"state": "scheduled", "due_at": freeze.until,
                                          "waiting_for": {"freeze": freeze.to_json()}})
        more: dict[str, Any] = {"waiting_for": None, "due_at": None}
        if freeze and override:
            more["freeze_override"] = {**override, "window": freeze.to_json(), "at": now}
        try:
            release = await self.releases.launch(doc, more)
        except Unavailable:
            return public_release(doc)         # shutting down: re-armed at start-up
        except Conflict as error:
            current = await self.doc(release_id)
            if strict or current["state"] != doc["state"]:
                raise
            return await self._move(doc, {"state": "scheduled", "waiting_for": {
                "lock": str(error)}, "due_at": now + timedelta(seconds=self.settings.gate_retry_s)})
        except FerryError as error:
            return await self.end(doc, "failed", f"could not start: {error}", {})
        if freeze and override and override["by"] != "ferry":
            await self.audit.record(FERRY, "freeze.override", str(release_id),
                                    project=doc["project"],
                                    details={**override, "window": freeze.to_json()})
        return release

    async def _move(self, doc: dict, fields: dict) -> dict:
        """Change a held release (from the state it was read in) and arm its timer."""
        moved = await self.store.releases.find_one_and_update(
            {"_id": doc["_id"], "state": doc["state"]}, {"$set": fields},
            return_document=ReturnDocument.AFTER)
        if moved is None:
            return public_release(await self.doc(doc["_id"]))
        if moved.get("due_at"):
            self.timers.arm(moved["_id"], moved["due_at"])
        await self._publish(moved)
        return public_release(moved)

    async def end(self, doc: dict, state: str, reason: str, fields: dict) -> dict:
        """End a held release in `state` (it never starts); Conflict when it changed since
        `doc` was read."""
        now = utcnow()
        ended = await self.store.releases.find_one_and_update(
            {"_id": doc["_id"], "state": doc["state"]},
            {"$set": {"state": state, "reason": reason, "finished_at": now, "due_at": None,
                      "waiting_for": None, **fields}},
            return_document=ReturnDocument.AFTER)
        if ended is None:
            raise Conflict(f"release {doc['_id']} changed meanwhile; try again")
        self.timers.disarm(doc["_id"])
        await self._publish(ended)
        return public_release(ended)

    async def _publish(self, doc: dict) -> None:
        await self.events.publish(f"release:{doc['_id']}", "release", {
            "state": doc["state"], "reason": doc.get("reason"),
            "waiting_for": doc.get("waiting_for"), "due_at": doc.get("due_at"),
            "finished_at": doc.get("finished_at")})

    # -- the commit approvers see -------------------------------------------------------

    def resolve_later(self, release_id: int) -> None:
        """Resolve the release's commit in the background (see `_resolve`)."""
        task = asyncio.get_running_loop().create_task(self._resolve(release_id),
                                                      name=f"release {release_id} resolve")
        self._resolving.add(task)
        task.add_done_callback(self._resolving.discard)

    async def _resolve(self, release_id: int) -> None:
        """Fetch and resolve the ref, so approvers approve one commit, which is then the
        one deployed. A failure is shown; the run tries again when it starts."""
        from services.git.mirrors import GitError

        doc = await self.doc(release_id)
        try:
            project = await self.projects.get(doc["project"])
            await self.git.sync(project)
            fields: dict[str, Any] = {"sha": await self.git.resolve(project, doc["ref"])}
        except (GitError, FerryError, ValueError) as error:
            fields = {"resolve_error": f"git: {error}"[:self.settings.git_error_max_chars]}
        updated = await self.store.releases.find_one_and_update(
            {"_id": release_id, "state": "awaiting_approval", "sha": None}, {"$set": fields},
            return_document=ReturnDocument.AFTER)
        if updated is not None:
            await self.events.publish(f"release:{release_id}", "release", fields)
