"""Wall links: read-only credentials for a shared screen, stored hashed.

A wall link's token opens the wall page, the wall's own API reads and the `wall` topic
(and the vote screens, see SCOPES) and nothing else: it is not a user, and no other
handler ever looks at it. Links are named, listed, revoked (kept, so a revoked screen can
say so) and their use is recorded (`last_used_at`, `uses` = times the page was opened).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from typing import Any

from pymongo import DESCENDING

from services.errors import Conflict, Invalid, NotFound
from services.registry.validation import boolean, text
from services.store import Store, utcnow

TOKEN = re.compile(r"fw_[A-Za-z0-9_-]{43}")
# What a wall link may open; the handlers that accept one name their scope here.
SCOPES = ("wall page", "wall API reads", "wall events", "vote screens")
TOUCH_EVERY_S = 60.0
# A link resolved is taken as it was for this long: a screen opening asks for it three
# times at once (page, snapshot, stream). Revoking here forgets them all at once; another
# instance's revocation is seen this much later at most.
RESOLVED_FOR_S = 2.0


class LinkRevoked(Exception):
    """The token was a wall link, revoked since."""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def public_link(doc: dict) -> dict:
    return {"id": doc["_id"], "name": doc["name"], "show_chat": doc.get("show_chat", False),
            "created_by": doc["created_by"], "created_at": doc["created_at"],
            "revoked_at": doc.get("revoked_at"), "last_used_at": doc.get("last_used_at"),
            "uses": doc.get("uses", 0), "scopes": list(SCOPES)}


class WallLinks:
    """Create, list, revoke and resolve wall links (the `wall_links` collection)."""

    def __init__(self, store: Store, max_links: int, name_max_bytes: int) -> None:
        self.store = store
        self.collection = store.db["wall_links"]
        self.max_links = max_links
        self.name_max_bytes = name_max_bytes
        self._touched: dict[int, float] = {}
        self._resolved: dict[str, tuple[float, dict]] = {}    # digest: (when, link)

    async def open(self) -> None:
        await self.collection.create_index("digest", unique=True)

    async def create(self, created_by: str, fields: dict[str, Any]) -> dict:
        """A new link; the only time its token is shown."""
        name = text(fields.get("name"), "name", self.name_max_bytes, empty=False, line=True)
        show_chat = boolean(fields.get("show_chat", False), "show_chat")
        unknown = set(fields) - {"name", "show_chat"}
        if unknown:
            raise Invalid(f"unknown field {sorted(unknown)[0][:40]!r}")
        if await self.collection.count_documents({}) >= self.max_links:
            raise Conflict(f"at most {self.max_links} wall links; delete revoked ones")
        token = "fw_" + secrets.token_urlsafe(32)
        doc = {"_id": await self.store.next_id("wall_links"), "name": name.strip(),
               "show_chat": show_chat, "digest": digest(token), "created_by": created_by,
               "created_at": utcnow(), "revoked_at": None, "last_used_at": None, "uses": 0}
        await self.collection.insert_one(doc)
        return {**public_link(doc), "token": token, "path": f"/wall?key={token}"}

    async def list(self) -> list[dict]:
        return [public_link(doc) async for doc in self.collection.find().sort(
            "_id", DESCENDING)]

    async def revoke(self, link_id: int) -> dict:
        doc = await self.collection.find_one({"_id": link_id})
        if doc is None:
            raise NotFound(f"no wall link {link_id}")
        if doc.get("revoked_at") is None:
            doc["revoked_at"] = utcnow()
            await self.collection.update_one({"_id": link_id},
                                              {"$set": {"revoked_at": doc["revoked_at"]}})
        self._resolved.clear()          # after the write: a read before it is forgotten too
        return public_link(doc)

    async def resolve(self, token: Any) -> dict | None:
        """The link this token belongs to; None when it is none; LinkRevoked when revoked.
        A string of the wrong shape is answered without a database look-up."""
        if not isinstance(token, str) or not TOKEN.fullmatch(token):
            return None
        key, now = digest(token), time.monotonic()
        known = self._resolved.get(key)
        if known is not None and now - known[0] < RESOLVED_FOR_S:
            doc = known[1]
        else:
            doc = await self.collection.find_one({"digest": key})
            if doc is None:
                return None
            if len(self._resolved) > 4 * self.max_links:
                self._resolved.clear()
            self._resolved[key] = (now, doc)
        if doc.get("revoked_at") is not None:
            raise LinkRevoked
        return doc

    async def touch(self, link: dict, *, opened: bool = False) -> None:
        """Record a use: the page opened (counted), or any read (last_used_at, at most
        once a minute per link and instance, so a screen's polling costs no writes)."""
        now = time.monotonic()
        if not opened and now - self._touched.get(link["_id"], -TOUCH_EVERY_S) < TOUCH_EVERY_S:
            return
        if len(self._touched) > 4 * self.max_links:
            self._touched.clear()
        self._touched[link["_id"]] = now
        update: dict = {"$set": {"last_used_at": utcnow()}}
        if opened:
            update["$inc"] = {"uses": 1}
        await self.collection.update_one({"_id": link["_id"]}, update)
