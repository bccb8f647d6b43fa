"""Who may do what on which project: the one place every API, page, topic and room asks.

Two kinds of role meet here:

- the global role of a user (`User.role`, see auth.py): `member` < `viewer` < `deployer`
  < `admin`. A global viewer sees every project, a global deployer deploys every project,
  an admin does everything. A `member` has no global access: they see only the projects
  they are a member of.
- a project role, from the `members` collection: `viewer` < `deployer` < `maintainer`
  (a maintainer also edits the project's settings and hooks and manages its members).

A user's role on a project is the higher of the two: their membership there, and what
their global role gives on every project. A project a user has no role on does not exist
for them: every answer about it is the same NotFound as for a project that does not
exist, so names cannot be probed.

Nothing is cached: every check reads the database, so a membership removed, or a role
lowered, holds from the next request on.

May import: store, errors, team.auth (User, roles).
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING

from services.errors import Forbidden, Invalid, NotFound
from services.store import Store, utcnow
from services.team.auth import User

PROJECT_ROLES = ("viewer", "deployer", "maintainer")
# Ranks of project roles; "admin" (a global admin) is above every project role.
RANK = {"viewer": 1, "deployer": 2, "maintainer": 3, "admin": 4}
# Project settings only an admin changes (a maintainer changes the rest, hooks included).
ADMIN_FIELDS = frozenset({"hosts", "groups"})
# What a global role gives on every project (a `member` gets nothing).
GLOBAL_GRANT = {"member": None, "viewer": "viewer", "deployer": "deployer", "admin": "admin"}
# Each action and the least project role that may do it.
ACTIONS = {
    "view": "viewer",        # read the project, its releases, logs, votes, topics, rooms
    "chat": "viewer",        # write in its rooms
    "deploy": "deployer",    # start, cancel, promote, retry, roll back; refresh its mirror
    "vote": "deployer",      # cast a go/no-go vote
    "edit": "maintainer",    # change its settings and hooks
    "members": "maintainer",  # add, change and remove its members
    "delete": "admin",       # delete the project
}


def higher(first: str | None, second: str | None) -> str | None:
    """The higher of two project roles (None is below every role)."""
    if first is None:
        return second
    if second is None:
        return first
    return first if RANK[first] >= RANK[second] else second


class Access:
    """Answers "what may user U do on project P", and keeps the project memberships."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # -- questions ----------------------------------------------------------------------

    async def project_role(self, user: User | None, project: str) -> str | None:
        """U's role on P ("viewer", "deployer", "maintainer", or "admin"), None for none.
        Does not check that P exists: `require` does."""
        if user is None:
            return None
        granted = GLOBAL_GRANT.get(user.role)
        if granted == "admin":
            return "admin"
        if not isinstance(project, str):      # never a query operator from a request body
            return granted
        member = await self.store.members.find_one(
            {"project": project, "user": user.name}, {"role": 1})
        return higher(granted, member["role"] if member else None)

    async def can(self, user: User | None, project: str, action: str) -> bool:
        """Whether U may do `action` (a key of ACTIONS) on P."""
        role = await self.project_role(user, project)
        return role is not None and RANK[role] >= RANK[ACTIONS[action]]

    async def require(self, user: User | None, project: str, action: str) -> str:
        """U's role on P when they may do `action` there. NotFound when P does not exist
        or U has no role on it (the same answer); Forbidden when they see P but may not
        do `action`."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        role = await self.project_role(user, project)
        if role is None:
            raise NotFound(f"no project named {str(project)[:80]!r}")
        _allow(role, project, action)      # (a global role: says nothing of P's existence)
        if not isinstance(project, str) or not await self.store.projects.count_documents(
                {"name": project}, limit=1):
            raise NotFound(f"no project named {str(project)[:80]!r}")
        return role

    async def release_project(self, release_id: int) -> str | None:
        """The project of a release, None when there is no such release."""
        doc = await self.store.releases.find_one({"_id": release_id}, {"project": 1})
        return doc["project"] if doc else None

    async def require_release(self, user: User | None, release_id: int, action: str) -> str:
        """The project of release R when U may do `action` on it; NotFound when R does not
        exist or U cannot see its project (the same answer), Forbidden as `require`."""
        return (await self.release_role(user, release_id, action))[0]

    async def release_role(self, user: User | None, release_id: int,
                           action: str) -> tuple[str, str]:
        """`require_release`, answering (project, U's role on it). The project need not
        exist any more: the releases of a deleted project stay readable by those whose
        global role sees every project (its members were forgotten with it)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}")
        project = await self.release_project(release_id)
        role = None if project is None else await self.project_role(user, project)
        if role is None:
            raise NotFound(f"no release {release_id}")
        _allow(role, project, action)
        return project, role

    async def may_see_release(self, user: User | None, release_id: int) -> bool:
        """Whether release R exists and U sees its project (for topics and rooms)."""
        project = await self.release_project(release_id)
        return project is not None and await self.can(user, project, "view")

    async def visible_projects(self, user: User | None) -> set[str] | None:
        """The names of the projects U sees; None means every project."""
        if user is None:
            return set()
        if GLOBAL_GRANT.get(user.role) is not None:
            return None
        return {doc["project"] async for doc in self.store.members.find(
            {"user": user.name}, {"project": 1})}

    async def roles_of(self, user: User) -> dict[str, str]:
        """U's memberships, project → role (what the pages show next to a project)."""
        return {doc["project"]: doc["role"] async for doc in self.store.members.find(
            {"user": user.name}, {"project": 1, "role": 1})}

    def check_project_change(self, role: str, body: dict, current: dict) -> None:
        """Forbidden when a maintainer (not an admin) changes what only an admin may: the
        hosts and groups a project deploys to (hosts stay admin-managed). Sending them
        unchanged (a settings form sends every field) is fine."""
        touched = sorted(key for key in ADMIN_FIELDS
                         if key in body and body[key] != current.get(key, []))
        if role != "admin" and touched:
            raise Forbidden(f"only an admin changes a project's {' and '.join(touched)}")

    # -- memberships --------------------------------------------------------------------

    async def members(self, project: str) -> list[dict]:
        """P's members, by user name."""
        cursor = self.store.members.find({"project": project}).sort("user", ASCENDING)
        return [_public(doc) async for doc in cursor]

    async def set_member(self, project: str, name: Any, role: Any, by: User) -> dict:
        """Make user `name` a member of P with `role` (adds or changes). Returns the
        membership with the role it had before (`previous`, None when new)."""
        if role not in PROJECT_ROLES:
            raise Invalid(f"role must be one of {', '.join(PROJECT_ROLES)}")
        if not isinstance(name, str) or not await self.store.users.count_documents(
                {"name": name}, limit=1):
            raise NotFound(f"no user named {str(name)[:80]!r}")
        before = await self.store.members.find_one_and_update(
            {"project": project, "user": name},
            {"$set": {"role": role, "updated_at": utcnow(), "updated_by": by.name},
             "$setOnInsert": {"created_at": utcnow()}}, upsert=True)
        doc = await self.store.members.find_one({"project": project, "user": name})
        return {**_public(doc), "previous": before["role"] if before else None}

    async def remove_member(self, project: str, name: str) -> str:
        """Remove user `name` from P; the role they had. NotFound when not a member."""
        doc = await self.store.members.find_one_and_delete({"project": project, "user": name})
        if doc is None:
            raise NotFound(f"{str(name)[:80]!r} is not a member of project {project}")
        return doc["role"]

    async def forget_project(self, project: str) -> None:
        """Drop every membership of a deleted project (a new project of the same name
        starts with no members)."""
        await self.store.members.delete_many({"project": project})


def _allow(role: str, project: str, action: str) -> None:
    needed = ACTIONS[action]
    if RANK[role] < RANK[needed]:
        raise Forbidden(f"{action} on project {project} requires the {needed} role on it")


def _public(doc: dict) -> dict:
    return {"user": doc["user"], "role": doc["role"], "updated_at": doc.get("updated_at"),
            "updated_by": doc.get("updated_by")}
