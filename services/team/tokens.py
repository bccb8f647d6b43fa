"""API tokens: named, with an optional expiry, shown once, listed with their last use,
revocable by their owner.

Only a token's SHA-256 digest is stored; the secret is returned once, by `issue`. A token
is refused once it expired or was revoked (revoking deletes it). The time of last use is
written at most once per `token_touch_interval_s` per token, so a script polling every
second costs one write a minute, not one a request.

May import: settings, store, errors, registry.validation.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING

from services.errors import Conflict, Invalid, NotFound
from services.registry.validation import integer, text
from services.settings import Settings
from services.store import Store, utcnow
from services.team.credentials import digest, in_chunks

PREFIX = "fy_"
NAME_MAX_BYTES = 200


def public_token(doc: dict) -> dict:
    """A token as its owner sees it in a list: never the secret or its digest."""
    return {"id": doc["_id"] if isinstance(doc["_id"], int) else str(doc["_id"]),
            "name": doc.get("name") or doc.get("note") or "",
            "created_at": doc.get("created_at"), "expires_at": doc.get("expires_at"),
            "last_used_at": doc.get("last_used_at")}


class Tokens:
    """Issues, lists, revokes and resolves API tokens."""

    def __init__(self, store: Store, settings: Settings,
                 on_revoke: Callable[[str], None] = lambda digest: None) -> None:
        self.store = store
        self.on_revoke = on_revoke      # told the digest of every token revoked
        self.max_days = settings.token_max_days
        self.per_user = settings.tokens_per_user_max
        self.touch_every = timedelta(seconds=settings.token_touch_interval_s)

    async def issue(self, user: str, body: dict, *, capped: bool = True) -> dict:
        """A new token for `user` from {name, expires_at? | expires_in_days?}; the
        answer holds the secret (`token`), shown this once. `note` is the old name of
        `name` and still taken. `capped`: refuse beyond tokens_per_user_max live ones."""
        unknown = set(body) - {"name", "note", "expires_at", "expires_in_days"}
        if unknown:
            raise Invalid(f"unknown token field(s): {', '.join(sorted(unknown))}")
        key = "name" if "name" in body else "note"
        name = text(body.get(key, ""), key, NAME_MAX_BYTES, line=True).strip()
        expires_at = self._expiry(body)
        now = utcnow()
        live = 0 if not capped else await self.store.tokens.count_documents(
            {"user": user, "counted": {"$ne": False},
             "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]})
        if capped and live >= self.per_user:
            raise Conflict(f"you hold {live} tokens, the most allowed: revoke one first")
        secret = PREFIX + secrets.token_urlsafe(32)
        doc = {"_id": await self.store.next_id("token"), "digest": digest(secret),
               "user": user, "name": name, "created_at": now, "expires_at": expires_at,
               "last_used_at": None, "counted": capped}
        await self.store.tokens.insert_one(doc)
        return {**public_token(doc), "token": secret, "user": user}

    def _expiry(self, body: dict) -> datetime | None:
        at, days = body.get("expires_at"), body.get("expires_in_days")
        if at is not None and days is not None:
            raise Invalid("give expires_at or expires_in_days, not both")
        if days is not None:
            return utcnow() + timedelta(days=integer(days, "expires_in_days", 1,
                                                     self.max_days))
        if at is None:
            return None
        when = _iso_time(at)
        if when <= utcnow():
            raise Invalid("expires_at must be in the future")
        if when > utcnow() + timedelta(days=self.max_days):
            raise Invalid(f"expires_at must be within {self.max_days} days")
        return when

    async def list(self, user: str) -> list[dict]:
        """The user's tokens, oldest first (expired ones too, marked by their expiry)."""
        cursor = self.store.tokens.find({"user": user}, {"digest": 0}).sort(
            [("created_at", ASCENDING), ("_id", ASCENDING)])
        return [public_token(doc) async for doc in cursor]

    async def revoke(self, user: str, token_id: int) -> dict:
        """Delete one of `user`'s tokens; NotFound for any other id (another user's too)."""
        doc = await self.store.tokens.find_one_and_delete({"_id": token_id, "user": user})
        if doc is None:
            raise NotFound(f"no token {token_id}")
        self.on_revoke(doc["digest"])
        return public_token(doc)

    async def resolve(self, token_digest: str) -> dict | None:
        """The token document of a valid secret's digest (not expired, not revoked), its
        last use written when the recorded one is older than the touch interval."""
        docs = await self.resolve_many([token_digest])
        return docs.get(token_digest)

    async def resolve_many(self, digests: Iterable[str], *, touch: bool = True
                           ) -> dict[str, dict]:
        """`resolve` for many digests at once: digest → document, valid ones only.
        `touch=False` (an open socket's periodic check, not a use) writes no last use."""
        now = utcnow()
        found: dict[str, dict] = {}
        for chunk in in_chunks(digests):
            found.update({doc["digest"]: doc async for doc in self.store.tokens.find(
                {"digest": {"$in": chunk}})})
        valid = {key: doc for key, doc in found.items()
                 if doc.get("expires_at") is None or doc["expires_at"] > now}
        stale = [doc["_id"] for doc in valid.values() if touch and (
            doc.get("last_used_at") is None or now - doc["last_used_at"] >= self.touch_every)]
        for chunk in in_chunks(stale):
            await self.store.tokens.update_many({"_id": {"$in": chunk}},
                                                {"$set": {"last_used_at": now}})
        return valid

def _iso_time(value: Any) -> datetime:
    """An ISO 8601 time from the API; one without a zone is UTC."""
    if not isinstance(value, str) or len(value) > 40 or not value.isascii():
        raise Invalid("expires_at must be an ISO 8601 time such as 2030-01-31T12:00:00Z")
    textual = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        parsed = datetime.fromisoformat(textual)
    except ValueError:
        raise Invalid("expires_at must be an ISO 8601 time such as "
                      "2030-01-31T12:00:00Z") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
