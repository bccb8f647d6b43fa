"""The audit log: an append-only record of every state-changing action — who, when, from
which address, through what (page, API token, chat, webhook) — and the reads that page it.

Ferry offers no way to edit or delete an entry: this module is the only code that touches
the `audit` collection, and it only inserts and reads.

When the database refuses an entry: the action it describes has already happened (entries
are written after an action succeeded, before its answer is sent), so failing the answer
would only make a client repeat an action that was done. The entry is retried
(`audit_write_attempts`, idempotently: the same `_id` each time) and, if still refused,
written whole to the server log (`ferry.audit`, level ERROR) so it is not lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.errors import Invalid
from services.settings import Settings
from services.store import Store, describe_db_error, utcnow

log = logging.getLogger("ferry.audit")

ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
MAX_ID = 2**53


@dataclass(frozen=True)
class Actor:
    """Who did something: a user name (or a webhook's pusher), the client address, and the
    channel: "page" (browser session), "token:<name>" (API token), "api" (a password sent
    to POST /api/session), "webhook:<provider>", "chat", "wall-link", or "ferry" for
    Ferry's own actions (schedules, expiries)."""

    name: str
    address: str = ""
    via: str = "page"


FERRY = Actor("ferry", "", "ferry")


@dataclass(frozen=True)
class AuditQuery:
    """One page of the log: filters (all optional) and the cursor."""

    actor: str | None = None
    project: str | None = None
    action: str | None = None          # exact, or a prefix when it ends with "."
    since: datetime | None = None      # inclusive
    until: datetime | None = None      # inclusive
    before: int | None = None          # entries with a smaller id (the "older" cursor)
    limit: int = 50


class AuditLog:
    """Appends audit entries and pages them newest first."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._last_recorded: dict[str, float] = {}    # record_every's keys, bounded

    async def record(self, actor: Actor, action: str, target: str = "", *,
                     project: str | None = None, details: dict[str, Any] | None = None) -> None:
        """Append one entry. `action` is dotted, e.g. "release.create", "user.disable";
        `details` must hold no secrets (see services/registry/redact.py). Never raises
        for a database failure (see the module's docstring)."""
        entry = {
            "ts": utcnow(),
            "actor": str(actor.name)[:200],
            "address": actor.address,
            "via": str(actor.via)[:200],
            "action": action,
            "target": str(target)[:500],
            "project": project,
            "details": self._bounded(details or {}),
        }
        await self._insert(entry)

    async def _insert(self, entry: dict) -> None:
        """Insert with retries under one id; the server log when all of them fail."""
        error: BaseException | None = None
        for attempt in range(max(1, self.settings.audit_write_attempts)):
            try:
                if "_id" not in entry:
                    entry["_id"] = await self.store.next_id("audit")
                await self.store.audit.insert_one(entry)
                return
            except DuplicateKeyError:
                return                    # an earlier try was stored; its answer was lost
            except PyMongoError as failure:
                error = failure
                await asyncio.sleep(0.2 * 2**attempt)
        log.error("audit entry not stored (%s): %s", describe_db_error(error),
                  json.dumps(entry, default=str, ensure_ascii=False)[:100_000])

    async def record_many(self, actor: Actor, action: str,
                          items: list[tuple[str, dict[str, Any]]], *,
                          project: str | None = None) -> None:
        """One entry per (target, details) in `items`, written in one batch (a bulk
        import of a thousand hosts is a thousand entries, not a thousand round trips)."""
        if not items:
            return
        counter = await self.store.counters.find_one_and_update(
            {"_id": "audit"}, {"$inc": {"value": len(items)}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        first = int(counter["value"]) - len(items) + 1
        now = utcnow()
        entries = [{"_id": first + index, "ts": now, "actor": str(actor.name)[:200],
                    "address": actor.address, "via": str(actor.via)[:200], "action": action,
                    "target": str(target)[:500], "project": project,
                    "details": self._bounded(details)}
                   for index, (target, details) in enumerate(items)]
        try:
            await self.store.audit.insert_many(entries, ordered=False)
        except PyMongoError as error:
            # Retried one by one (the same ids: a stored one is a duplicate, skipped).
            log.warning("audit batch refused (%s); writing entries one by one",
                        describe_db_error(error))
            for entry in entries:
                await self._insert(entry)

    async def record_every(self, key: str, every_s: float, actor: Actor, action: str,
                           target: str = "", **kwargs: Any) -> bool:
        """`record`, unless an entry with this `key` was recorded less than `every_s`
        ago by this instance (uses that happen on every request, such as a wall link's
        polling). True when it recorded."""
        now = time.monotonic()
        last = self._last_recorded.get(key)
        if last is not None and now - last < every_s:
            return False
        if len(self._last_recorded) >= 10_000:
            self._last_recorded.clear()
        self._last_recorded[key] = now
        await self.record(actor, action, target, **kwargs)
        return True

    async def page(self, query: AuditQuery) -> dict:
        """Entries matching `query`, newest first; `next_before` is the cursor of the next
        (older) page, None when this page is the last."""
        limit = max(1, min(query.limit, self.settings.audit_page_max))
        cursor = self.store.audit.find(self._filter(query)).sort(
            "_id", DESCENDING).limit(limit + 1)
        entries = [_public(doc) async for doc in cursor]
        more = len(entries) > limit
        entries = entries[:limit]
        return {"entries": entries, "next_before": entries[-1]["id"] if more else None}

    def _filter(self, query: AuditQuery) -> dict:
        found: dict[str, Any] = {}
        if query.actor is not None:
            found["actor"] = query.actor
        if query.project is not None:
            found["project"] = query.project
        if query.action is not None:
            if query.action.endswith("."):
                # "release." → every action from "release." up to (not incl.) "release/"
                found["action"] = {"$gte": query.action, "$lt": query.action[:-1] + "/"}
            else:
                found["action"] = query.action
        if query.since is not None or query.until is not None:
            found["ts"] = {}
            if query.since is not None:
                found["ts"]["$gte"] = query.since
            if query.until is not None:
                found["ts"]["$lte"] = query.until
        if query.before is not None:
            found["_id"] = {"$lt": query.before}
        return found

    def parse_query(self, args: dict[str, str | None]) -> AuditQuery:
        """An AuditQuery from the API's query arguments; Invalid (400) for any bad one."""
        actor = self._text(args.get("actor"), "actor")
        project = self._text(args.get("project"), "project")
        action = args.get("action") or None
        if action is not None and (len(action) > 100 or not ACTION.fullmatch(action)):
            raise Invalid('action must be a dotted action name such as "release.create", '
                          'or a prefix ending in "." such as "release."')
        since, until = _time(args.get("since"), "since"), _time(args.get("until"), "until")
        if since is not None and until is not None and since > until:
            raise Invalid("since must not be after until")
        before = _whole(args.get("before"), "before", 1, MAX_ID)
        limit = _whole(args.get("limit"), "limit", 1, self.settings.audit_page_max)
        return AuditQuery(actor, project, action, since, until, before,
                          50 if limit is None else limit)

    def _text(self, value: str | None, what: str) -> str | None:
        if not value:
            return None
        if len(value) > self.settings.audit_filter_max_chars or _CONTROL.search(value):
            raise Invalid(f"{what} must be at most {self.settings.audit_filter_max_chars} "
                          "characters, without control characters")
        return value

    def _bounded(self, value: Any, depth: int = 0) -> Any:
        """Details as stored: strings cut at audit_value_max_chars, nesting and lists
        bounded, so no entry nears the database's document size limit."""
        cap = self.settings.audit_value_max_chars
        if isinstance(value, str):
            return value if len(value) <= cap else value[:cap] + "…"
        if depth >= 8:
            return "…"
        if isinstance(value, dict):
            return {str(key)[:200]: self._bounded(item, depth + 1)
                    for key, item in list(value.items())[:200]}
        if isinstance(value, (list, tuple, set)):
            return [self._bounded(item, depth + 1) for item in list(value)[:200]]
        if value is None or isinstance(value, (bool, int, float, datetime)):
            return value
        return str(value)[:cap]


def _public(doc: dict) -> dict:
    return {"id": doc["_id"], "ts": doc["ts"], "actor": doc["actor"],
            "address": doc.get("address", ""), "via": doc.get("via", ""),
            "action": doc["action"], "target": doc.get("target", ""),
            "project": doc.get("project"), "details": doc.get("details") or {}}


def _time(value: str | None, what: str) -> datetime | None:
    """An ISO 8601 time; one without a zone is UTC."""
    if not value:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        if len(text) > 40 or not text.isascii():
            raise ValueError(text)
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise Invalid(f"{what} must be an ISO 8601 time such as 2026-01-31T12:00:00Z, "
                      f"not {value[:40]!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _whole(value: str | None, what: str, low: int, high: int) -> int | None:
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > 16 or not (
            low <= int(value) <= high):
        raise Invalid(f"{what} must be a whole number from {low} to {high}")
    return int(value)
