"""Gates before a release starts: approval, freeze windows and a start time.

A release that cannot start at once is stored *held*, in one of two states, without the
deploy lock and without touching a host:

- `scheduled`: waiting for `not_before`, for a freeze to end, or for its project's lock
  (`waiting_for` says which, `due_at` when it is next looked at);
- `awaiting_approval`: waiting for N approvers (the project's `approval`, approval.py);
  its commit is resolved at once, so approvers see the SHA that will be deployed.

When a held release comes due (its timer, an approval completing, or "start now") it goes
through the gates *as they stand then*: approval first (a scheduled release of a project
that requires approval starts waiting for it then), then freezes (freeze.py: inside one it
stays `scheduled` until the freeze ends, unless an admin's override came with it), then the
deploy lock (locked: it tries again after `gate_retry_s`). It ends `rejected` (one
rejection), `expired` (approval not complete in time), `cancelled` (before it started) or
`failed` (its project or hosts were deleted meanwhile). Each change is an event on
`release:<id>`; approvals are `approval` events.

A release started directly (no `not_before`, no approval) inside a freeze is refused
(Conflict, with the window's reason and end) unless an admin overrides it with a reason,
which is stored in the release (`freeze_override`).

This module holds the verbs people call (create, approve, reject, cancel, start now) and
what they read; held.py holds what those verbs and the timers share: each held release's
timer and lock, the moves through the gates, and resolving the commit approvers see.

May import: settings, store, errors, registry, team, releases.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument

from services.errors import Conflict, FerryError, Forbidden, Invalid, NotFound
from services.registry import validation as check
from services.releases import approval as rules_of
from services.releases.freeze import active
from services.releases.held import HELD, HeldReleases, approval_fields, frozen_message
from services.releases.reads import public_release
from services.releases.schedule import parse_not_before
from services.settings import Settings
from services.store import Store, utcnow
from services.team.audit import AuditLog
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.git.mirrors import GitService
    from services.registry.projects import ProjectService
    from services.releases.service import ReleaseService

log = logging.getLogger("ferry.gates")
# A user's role on a project (team.access.Access.project_role), for "role:<r>" approvers.
ProjectRole = Callable[[User, str], Awaitable[str | None]]


async def no_project_role(user: User, project: str) -> str | None:
    """Without project memberships, only global roles count."""
    return None


class GateService:
    """Creates releases through their gates; approves, rejects, cancels and starts held
    releases (their timers and moves through the gates are `held`'s)."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 releases: ReleaseService, projects: ProjectService, git: GitService,
                 audit: AuditLog, project_role: ProjectRole = no_project_role) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.releases = releases
        self.projects = projects
        self.project_role = project_role
        self.held = HeldReleases(settings, store, events, releases, projects, git, audit)

    async def open(self) -> None:
        """Re-arm every held release from its stored due time (past ones fire at once)."""
        await self.held.open()

    async def close(self) -> None:
        await self.held.close()

    # -- creating ---------------------------------------------------------------------

    async def create(self, user: User, body: dict) -> dict:
        """Start a release now, or hold it (scheduled, awaiting approval); Conflict inside
        a freeze unless an admin overrides it."""
        name = body.get("project")
        if not isinstance(name, str) or not name:
            raise Invalid("project is required")
        project = await self.projects.get(name)
        not_before = parse_not_before(body.get("not_before"), self.settings)
        override = self._override(user, body.get("override_freeze"))
        now = utcnow()
        if not_before or project.get("approval"):
            await self._check_room()
            hold: dict[str, Any] = {"override_freeze": override, "not_before": not_before,
                                    "waiting_for": None, "approval": None}
            if not_before:
                hold.update(state="scheduled", due_at=not_before)
            else:
                hold.update(approval_fields(project["approval"], now))
            release = await self.releases.create(user, body, hold=hold)
            self.held.timers.arm(release["id"], release["due_at"])
            if release["state"] == "awaiting_approval":
                self.held.resolve_later(release["id"])
            return release
        freeze = active(project.get("freezes"), now)
        if freeze and not override:
            raise Conflict(frozen_message(project["name"], freeze))
        more = {"freeze_override": {**override, "window": freeze.to_json(), "at": now}
                } if freeze and override else None
        return await self.releases.create(user, body, more=more)

    def _override(self, user: User, value: Any) -> dict | None:
        if value is None:
            return None
        reason = check.text(value, "override_freeze", self.settings.freeze_reason_max_chars,
                            empty=False, line=True)
        if not user.can("admin"):
            raise Forbidden("only an admin may override a freeze")
        return {"by": user.name, "reason": reason}

    async def _check_room(self) -> None:
        limit = self.settings.gate_max_waiting
        if await self.store.releases.count_documents({"state": {"$in": list(HELD)}},
                                                     limit=limit) >= limit:
            raise Conflict(f"{limit} releases are already waiting; start or cancel some first")

    # -- reading ----------------------------------------------------------------------

    async def approval(self, user: User, release_id: int) -> dict:
        """The release's approval as the page shows it, with what `user` may do."""
        doc = await self.held.doc(release_id)
        approval = doc.get("approval")
        if not approval:
            raise NotFound(f"release {release_id} needs no approval")
        refusal = await self._refusal(user, doc)
        return {"release_id": release_id, "state": doc["state"], "sha": doc.get("sha"),
                "created_by": doc.get("created_by"), **approval,
                "awaited": rules_of.awaited(approval["rules"], approval["approvals"],
                                            doc.get("created_by")),
                "can_approve": refusal is None, "refusal": refusal and str(refusal)}

    async def waiting(self, user: User) -> dict:
        """Releases awaiting `user`'s approval, and every scheduled release."""
        mine, scheduled = [], []
        limit = self.settings.gate_max_waiting
        async for doc in self.store.releases.find({"state": {"$in": list(HELD)}},
                                                  {"batches": 0}).sort("_id", 1).limit(limit):
            doc.pop("hosts", None)
            if doc["state"] == "scheduled":
                scheduled.append(public_release(doc))
            elif await self._refusal(user, doc) is None:
                mine.append(public_release(doc))
        return {"awaiting_my_approval": mine, "scheduled": scheduled}

    async def _refusal(self, user: User, doc: dict) -> FerryError | None:
        """Why `user` may not approve or reject `doc` now; None when they may."""
        return rules_of.refusal(user, doc, await self.project_role(user, doc["project"]))

    # -- approving --------------------------------------------------------------------

    def _comment(self, value: Any, required: bool) -> str | None:
        if value is None or (isinstance(value, str) and not value.strip()):
            if required:
                raise Invalid("comment is required: say why")
            return None
        return check.text(value, "comment", self.settings.approval_comment_max_chars)

    async def approve(self, user: User, release_id: int, comment: Any = None) -> dict:
        """Record `user`'s approval; once enough approvers agreed, the release goes on.
        A second approval by the same user is refused (Conflict)."""
        comment = self._comment(comment, False)
        async with self.held.lock(release_id):
            doc = await self.held.doc(release_id)
            refusal = await self._refusal(user, doc)
            if refusal is not None:
                raise refusal
            entry = {"user": user.name, "comment": comment, "ts": utcnow()}
            doc = await self.store.releases.find_one_and_update(
                {"_id": release_id, "state": "awaiting_approval"},
                {"$push": {"approval.approvals": entry}}, return_document=ReturnDocument.AFTER)
            if doc is None:
                raise Conflict(f"release {release_id} is no longer awaiting approval")
            approval = doc["approval"]
            await self.events.publish(f"release:{release_id}", "approval", {
                "action": "approve", **entry, "approvals": len(approval["approvals"]),
                "required": approval["rules"]["required"]})
            if len(approval["approvals"]) < approval["rules"]["required"]:
                return public_release(doc)
            doc = await self.store.releases.find_one_and_update(
                {"_id": release_id, "state": "awaiting_approval"},
                {"$set": {"approval.approved_at": utcnow(), "due_at": utcnow()}},
                return_document=ReturnDocument.AFTER)
            self.held.timers.disarm(release_id)
            return await self.held.advance(doc)

    async def reject(self, user: User, release_id: int, comment: Any) -> dict:
        """One rejection ends the release `rejected`, with the comment as its reason."""
        comment = self._comment(comment, True)
        async with self.held.lock(release_id):
            doc = await self.held.doc(release_id)
            refusal = await self._refusal(user, doc)
            if refusal is not None and not isinstance(refusal, rules_of.AlreadyApproved):
                raise refusal           # one who approved may still change their mind
            rejection = {"user": user.name, "comment": comment, "ts": utcnow()}
            doc = await self.held.end(doc, "rejected", f"rejected by {user.name}: {comment}",
                                      {"approval.rejection": rejection})
            await self.events.publish(f"release:{release_id}", "approval",
                                      {"action": "reject", **rejection})
            return doc

    # -- cancelling and starting now ----------------------------------------------------

    async def cancel(self, user: User, release_id: int) -> dict | None:
        """Cancel a held release (it never starts); None when it is not held."""
        async with self.held.lock(release_id):
            doc = await self.held.doc(release_id)
            if doc["state"] not in HELD:
                return None
            return await self.held.end(doc, "cancelled",
                                       f"cancelled by {user.name} before it started", {})

    async def start_now(self, user: User, release_id: int, override_freeze: Any) -> dict:
        """Start a scheduled release now, through approval and freezes as they stand
        (Conflict inside a freeze without an admin's override, or while locked)."""
        override = self._override(user, override_freeze)
        async with self.held.lock(release_id):
            doc = await self.held.doc(release_id)
            if doc["state"] != "scheduled":
                raise Conflict(f"release {release_id} is {doc['state']}; only a scheduled "
                               "release can be started now")
            self.held.timers.disarm(release_id)
            try:
                return await self.held.advance(doc, override=override, strict=True)
            finally:
                current = await self.held.doc(release_id)
                if current["state"] in HELD:
                    self.held.timers.arm(release_id, current.get("due_at") or utcnow())
