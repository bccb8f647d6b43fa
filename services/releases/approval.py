"""Approval rules of a project, and who may approve under them.

A project's `approval` setting (None: releases start without approval):

    {"required": N, "approvers": ["alice", "role:maintainer"], "exclude_initiator": true,
     "expires_s": T}

`approvers` names users, or `role:<role>`: anyone whose role reaches that role, on the
project (a member's role there) or globally. The ladder is viewer < deployer < maintainer
< admin; a global admin is everything, so `role:maintainer` includes every admin. A
release needs N distinct approvers; with `exclude_initiator` the person who started it
may not approve it (and never counts); it expires T seconds after it began waiting.

Pure functions; may import settings, errors, registry.validation, team.auth.
"""

from __future__ import annotations

from typing import Any

from services.errors import Conflict, FerryError, Forbidden, Invalid
from services.registry import validation as check
from services.settings import Settings
from services.team.auth import USER_NAME, User

LADDER = ("viewer", "deployer", "maintainer", "admin")
ROLE_PREFIX = "role:"


def validate(value: Any, settings: Settings) -> dict | None:
    """A project's `approval` setting, checked whole, with its defaults filled in."""
    if value is None:
        return None
    keys = {"required", "approvers", "exclude_initiator", "expires_s"}
    if not isinstance(value, dict) or set(value) - keys:
        raise Invalid("approval takes required, approvers, exclude_initiator, expires_s")
    required = check.integer(value.get("required", 1), "approval.required", 1,
                             settings.approval_max_required)
    approvers = value.get("approvers")
    limit = settings.approval_max_approvers
    if not isinstance(approvers, list) or not approvers or len(approvers) > limit:
        raise Invalid(f"approval.approvers must be a list of 1 to {limit} user names or "
                      "\"role:<role>\" entries")
    for entry in approvers:
        if isinstance(entry, str) and entry.startswith(ROLE_PREFIX):
            if entry[len(ROLE_PREFIX):] not in LADDER:
                raise Invalid(f"approval.approvers: unknown role in {entry[:40]!r} (one of "
                              f"{', '.join(ROLE_PREFIX + role for role in LADDER)})")
        elif not check.matches(USER_NAME, entry):
            raise Invalid("approval.approvers: each entry is a user name or "
                          "\"role:<role>\"")
    if len(set(approvers)) != len(approvers):
        raise Invalid("approval.approvers lists an entry twice")
    exclude = check.boolean(value.get("exclude_initiator", True), "approval.exclude_initiator")
    named = [entry for entry in approvers if not entry.startswith(ROLE_PREFIX)]
    if len(named) == len(approvers) and required > len(named):
        raise Invalid(f"approval.required is {required} but only {len(named)} approvers "
                      "are named")
    expires = check.integer(value.get("expires_s", settings.approval_expires_default_s),
                            "approval.expires_s", 1, settings.approval_expires_max_s)
    return {"required": required, "approvers": list(approvers),
            "exclude_initiator": exclude, "expires_s": expires}


def rank(role: str | None) -> int:
    return LADDER.index(role) if role in LADDER else -1


def is_approver(user: User, rules: dict, project_role: str | None) -> bool:
    """Whether `user` (with `project_role` on the release's project, if any) is one of the
    rules' approvers. The initiator rule is separate (`excluded`)."""
    if user.role == "admin":
        return True
    mine = max(rank(user.role), rank(project_role))
    for entry in rules["approvers"]:
        if entry.startswith(ROLE_PREFIX):
            if mine >= rank(entry[len(ROLE_PREFIX):]):
                return True
        elif entry == user.name:
            return True
    return False


def excluded(user: User, rules: dict, release: dict) -> bool:
    return bool(rules["exclude_initiator"]) and user.name == release.get("created_by")


def awaited(rules: dict, approvals: list[dict], initiator: str | None) -> list[str]:
    """The approvers still awaited, as the page shows them: named users who have not
    approved (the initiator left out when excluded), and the role entries."""
    done = {entry["user"] for entry in approvals}
    return [entry for entry in rules["approvers"] if entry not in done
            and not (rules["exclude_initiator"] and entry == initiator)]



class AlreadyApproved(Conflict):
    """A second approval by the same user: refused, the first one stands."""


def refusal(user: User, release: dict, project_role: str | None) -> FerryError | None:
    """Why `user` may not approve or reject `release` now (the error to raise: Conflict
    for the release's state or a second approval, Forbidden for who they are); None when
    they may."""
    approval = release.get("approval") or {}
    if release["state"] != "awaiting_approval" or not approval:
        return Conflict(f"release {release['_id']} is {release['state']}, not awaiting "
                        "approval")
    rules = approval["rules"]
    if excluded(user, rules, release):
        return Forbidden(f"you started release {release['_id']}: its approvers must be "
                         "other people (exclude_initiator)")
    if not is_approver(user, rules, project_role):
        return Forbidden(f"you are not an approver of {release['project']}")
    if any(entry["user"] == user.name for entry in approval["approvals"]):
        return AlreadyApproved(f"you already approved release {release['_id']}")
    return None
