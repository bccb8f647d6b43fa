"""The audit log: an append-only record of every state-changing action — who, when, from
which address, through what (page, API token, webhook) — and the reads that page it.

Ferry offers no way to edit or delete an entry; only `record` writes to the collection.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from services.store import Store, utcnow

log = logging.getLogger("ferry.audit")


@dataclass(frozen=True)
class Actor:
    """Who did something: a user name (or a webhook's pusher), the client address, and the
    channel: "page" (browser session), "token:<name>" (API token), "webhook:<provider>",
    "chat", or "ferry" for Ferry's own actions (schedules, expiries)."""

    name: str
    address: str = ""
    via: str = "page"


class AuditLog:
    """Appends audit entries and pages them newest first."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def record(self, actor: Actor, action: str, target: str = "", *,
                     project: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Append one entry. `action` is dotted, e.g. "release.create", "user.disable"."""
        entry = {
            "_id": await self.store.next_id("audit"),
            "ts": utcnow(),
            "actor": actor.name,
            "address": actor.address,
            "via": actor.via,
            "action": action,
            "target": target,
            "project": project,
            "details": details or {},
        }
        await self.store.audit.insert_one(entry)
