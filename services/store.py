"""The database: collections, indexes and a few small typed queries. No business rules."""

from __future__ import annotations

from datetime import UTC, datetime

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase


def utcnow() -> datetime:
    return datetime.now(UTC)


def describe_db_error(error: BaseException) -> str:
    """A failed database call for the server's log: the error's class and codes, never
    its text, which for a bulk write holds every refused document whole (a log batch
    of 36 MB once went to the log on each retry)."""
    codes: set = set()
    details = getattr(error, "details", None)
    if isinstance(details, dict):
        codes |= {failure.get("code") for failure in details.get("writeErrors") or []}
        codes |= {failure.get("code") for failure in details.get("writeConcernErrors") or []}
    if getattr(error, "code", None) is not None:
        codes.add(error.code)
    codes.discard(None)
    if codes:
        return f"{type(error).__name__} (code {', '.join(str(c) for c in sorted(codes))})"
    return type(error).__name__


class Store:
    """Owns the AsyncMongoClient and names every collection Ferry uses."""

    def __init__(self, url: str, db_name: str) -> None:
        self.client = AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=10_000)
        self.db: AsyncDatabase = self.client[db_name]
        self.users = self.db.users
        self.sessions = self.db.sessions
        self.tokens = self.db.tokens
        self.members = self.db.members
        self.projects = self.db.projects
        self.hosts = self.db.hosts
        self.releases = self.db.releases
        self.host_runs = self.db.host_runs
        self.host_logs = self.db.host_logs
        self.events = self.db.events
        self.leases = self.db.leases
        self.counters = self.db.counters
        self.chat = self.db.chat
        self.audit = self.db.audit

    async def ensure_indexes(self) -> None:
        """Create every index Ferry's queries rely on (idempotent)."""
        await self.users.create_index("name", unique=True)
        await self.sessions.create_index("expires_at", expireAfterSeconds=0)
        await self.sessions.create_index("digest", unique=True)
        await self.tokens.create_index("digest", unique=True)
        await self.tokens.create_index([("user", ASCENDING), ("_id", ASCENDING)])
        await self.members.create_index([("project", ASCENDING), ("user", ASCENDING)],
                                        unique=True)
        await self.members.create_index("user")
        await self.projects.create_index("name", unique=True)
        await self.hosts.create_index("name", unique=True)
        await self.hosts.create_index("groups")
        await self.releases.create_index([("project", ASCENDING), ("_id", DESCENDING)])
        await self.releases.create_index("state")
        await self.host_runs.create_index([("release_id", ASCENDING), ("host", ASCENDING)],
                                          unique=True)
        await self.host_runs.create_index([("host", ASCENDING), ("release_id", DESCENDING)])
        await self.host_logs.create_index([("release_id", ASCENDING), ("host", ASCENDING),
                                           ("seq", ASCENDING)])
        await self.events.create_index([("topic", ASCENDING), ("first_seq", ASCENDING)],
                                       unique=True)
        await self.audit.create_index([("actor", ASCENDING), ("_id", DESCENDING)])
        await self.audit.create_index([("project", ASCENDING), ("_id", DESCENDING)])
        await self.audit.create_index([("action", ASCENDING), ("_id", DESCENDING)])

    async def next_id(self, name: str) -> int:
        """A strictly increasing integer per counter name (atomic in the database)."""
        doc = await self.counters.find_one_and_update(
            {"_id": name}, {"$inc": {"value": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return int(doc["value"])

    async def close(self) -> None:
        await self.client.close()
