"""Users, password hashing (in the executor), browser sessions and API tokens, roles.

Passwords are hashed with scrypt (n=2**14, r=8: 16 MiB per hash, memory-hard); sign-in
goes through `sign_in`, which the throttle guards (see throttle.py) and which logs every
failure with the name and address, never the password.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from services.registry.validation import matches, text
from services.store import Store, utcnow
from services.team.throttle import SigninThrottle

log = logging.getLogger("ferry.auth")

ROLES = ("viewer", "deployer", "admin")
USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_PASSWORD_BYTES = 1024


@dataclass(frozen=True)
class User:
    name: str
    role: str

    def can(self, role: str) -> bool:
        """True when this user's role is at least `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role}


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


class AuthService:
    """Checks credentials and maps session cookies and bearer tokens to users."""

    def __init__(self, store: Store, executor: Executor, session_ttl_s: int,
                 throttle: SigninThrottle) -> None:
        self.store = store
        self.executor = executor
        self.session_ttl = timedelta(seconds=session_ttl_s)
        self.throttle = throttle

    async def _hash(self, password: str, salt: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _hash_password, password, salt)

    async def create_user(self, name: str, password: str, role: str) -> User:
        if not matches(USER_NAME, name):
            raise ValueError("user name: 1-64 letters, digits, '_', '.', '-'")
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if not 8 <= len(password.encode()) <= MAX_PASSWORD_BYTES:
            raise ValueError("password must be 8 to 1024 bytes")
        salt = secrets.token_bytes(16)
        digest = await self._hash(password, salt)
        try:
            await self.store.users.insert_one(
                {"name": name, "role": role, "salt": salt, "hash": digest,
                 "created_at": utcnow()})
        except DuplicateKeyError:
            raise ValueError(f"user {name!r} already exists") from None
        return User(name, role)

    async def ensure_admin(self, password: str | None = None) -> str | None:
        """Create user `admin` when there are no users; return its password if created."""
        if await self.store.users.count_documents({}, limit=1):
            return None
        password = password or secrets.token_urlsafe(12)
        await self.create_user("admin", password, "admin")
        return password

    async def sign_in(self, name: str, password: str, address: str) -> User | None:
        """The user, or None for a wrong name or password; raises Throttled (429) when
        this account or address failed too often lately, without checking anything."""
        self.throttle.begin(name, address)
        try:
            user = await self.check_password(name, password)
        except BaseException:
            self.throttle.end(name, address, ok=None)     # not a wrong password
            raise
        self.throttle.end(name, address, ok=user is not None)
        if user is None:
            wait = self.throttle.wait(name, address)
            log.warning("failed sign-in as %r from %s%s", name[:64], address,
                        f"; locked for {wait:.0f} s" if wait >= 1 else "")
        return user

    async def check_password(self, name: str, password: str) -> User | None:
        doc = await self.store.users.find_one({"name": name})
        if doc is None or len(password.encode()) > MAX_PASSWORD_BYTES:
            # Spend the same time as a real check so names cannot be probed by timing.
            await self._hash(password[:64], b"0" * 16)
            return None
        digest = await self._hash(password, doc["salt"])
        if not hmac.compare_digest(digest, doc["hash"]):
            return None
        return User(doc["name"], doc["role"])

    async def create_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.sessions.insert_one(
            {"digest": _digest(token), "user": user.name,
             "expires_at": utcnow() + self.session_ttl})
        return token

    async def session_user(self, token: str) -> User | None:
        doc = await self.store.sessions.find_one(
            {"digest": _digest(token), "expires_at": {"$gt": utcnow()}})
        return await self.user(doc["user"]) if doc else None

    async def end_session(self, token: str) -> None:
        await self.store.sessions.delete_one({"digest": _digest(token)})

    async def create_token(self, user: User, note: str = "") -> str:
        """An API token for `Authorization: Bearer …`; only its digest is stored."""
        note = text(note, "note", 200, line=True)
        token = "fy_" + secrets.token_urlsafe(32)
        await self.store.tokens.insert_one(
            {"digest": _digest(token), "user": user.name, "note": note,
             "created_at": utcnow()})
        return token

    async def token_user(self, token: str) -> User | None:
        doc = await self.store.tokens.find_one({"digest": _digest(token)})
        return await self.user(doc["user"]) if doc else None

    async def user(self, name: str) -> User | None:
        doc = await self.store.users.find_one({"name": name})
        return User(doc["name"], doc["role"]) if doc else None
