"""Users, password hashing (in the executor), browser sessions and API tokens, roles.

Passwords are hashed with scrypt (n=2**14, r=8: 16 MiB per hash, memory-hard); sign-in
goes through `sign_in`, which the throttle guards (see throttle.py) and which logs every
failure with the name and address, never the password.

Every request resolves its credential here. A resolved credential is remembered for a few
seconds (credentials.py says why and how); every change made here that can end or lower
one forgets it at once, so a user who is disabled, a token revoked, a session ended,
stops working from the next request on (through another instance, within
`auth_cache_s`), and an expired token or session from its expiry on. Disabling a user
also ends their sessions (re-enabling does not bring them back); their tokens are refused
while they are disabled.

Global roles, lowest first: `member` (signs in; sees only the projects they are a member
of, see access.py), `viewer` (sees every project), `deployer` (deploys every project),
`admin` (everything, and the only one who manages users, hosts and projects).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from services.errors import Conflict, Invalid, NotFound
from services.registry.validation import matches
from services.settings import Settings
from services.store import Store, utcnow
from services.team.credentials import (
    BEARER,
    SESSION,
    Credential,
    CredentialCache,
    digest,
    in_chunks,
)
from services.team.throttle import SigninThrottle
from services.team.tokens import Tokens

log = logging.getLogger("ferry.auth")

ROLES = ("member", "viewer", "deployer", "admin")
USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MIN_PASSWORD_BYTES = 8
MAX_PASSWORD_BYTES = 1024


class InvalidUser(Invalid, ValueError):
    """A user field that cannot be taken (400)."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    # How this request authenticated, for the audit log: "" (browser session) or
    # "token:<token name>". Not part of the user's identity.
    via: str = field(default="", compare=False)

    def can(self, role: str) -> bool:
        """True when this user's global role is at least `role`."""
        return ROLES.index(self.role) >= ROLES.index(role)

    def to_json(self) -> dict:
        return {"name": self.name, "role": self.role}


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)


def check_role(role: Any) -> str:
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}")
    return role


def check_password_value(password: Any) -> str:
    if not isinstance(password, str) or not (
            MIN_PASSWORD_BYTES <= len(password.encode()) <= MAX_PASSWORD_BYTES):
        raise InvalidUser(f"password must be a string of {MIN_PASSWORD_BYTES} to "
                          f"{MAX_PASSWORD_BYTES} bytes")
    return password


def public_user(doc: dict) -> dict:
    """A user as the API shows it: never the salt or the hash."""
    return {"name": doc["name"], "role": doc["role"], "disabled": bool(doc.get("disabled")),
            "created_at": doc.get("created_at"), "last_signin_at": doc.get("last_signin_at")}


class AuthService:
    """Checks credentials and maps session cookies and bearer tokens to users; admins'
    user management (list, create, change role or password, disable)."""

    def __init__(self, store: Store, executor: Executor, settings: Settings,
                 throttle: SigninThrottle) -> None:
        self.store = store
        self.executor = executor
        self.session_ttl = timedelta(seconds=settings.session_ttl_s)
        self.throttle = throttle
        self.cache = CredentialCache(settings.auth_cache_s, settings.auth_cache_max_entries)
        self.tokens = Tokens(store, settings,
                             on_revoke=lambda gone: self.cache.forget(Credential(BEARER, gone)))

    async def _hash(self, password: str, salt: bytes) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, _hash_password, password, salt)

    # -- users ----------------------------------------------------------------------------

    async def create_user(self, name: Any, password: Any, role: Any) -> User:
        if not matches(USER_NAME, name):
            raise InvalidUser("user name: 1-64 letters, digits, '_', '.', '-'")
        check_role(role)
        check_password_value(password)
        salt = secrets.token_bytes(16)
        hashed = await self._hash(password, salt)
        try:
            await self.store.users.insert_one(
                {"name": name, "role": role, "salt": salt, "hash": hashed,
                 "disabled": False, "created_at": utcnow(), "last_signin_at": None})
        except DuplicateKeyError:
            raise Conflict(f"user {name!r} already exists") from None
        return User(name, role)

    async def list_users(self) -> list[dict]:
        cursor = self.store.users.find({}, {"salt": 0, "hash": 0}).sort("name", ASCENDING)
        return [public_user(doc) async for doc in cursor]

    async def get_user(self, name: str) -> dict:
        doc = await self.store.users.find_one({"name": name}, {"salt": 0, "hash": 0})
        if doc is None:
            raise NotFound(f"no user named {name[:80]!r}")
        return public_user(doc)

    async def update_user(self, name: str, body: dict) -> tuple[dict, dict]:
        """Change `role`, `password` and/or `disabled`. Returns the user and what changed
        ({field: [before, after]}; a password change shows as True, never its value).
        A new password or a disable ends the user's sessions. The last enabled admin can
        be neither demoted nor disabled."""
        unknown = set(body) - {"role", "password", "disabled"}
        if unknown:
            raise InvalidUser(f"unknown user field(s): {', '.join(sorted(unknown))}")
        current = await self.store.users.find_one({"name": name})
        if current is None:
            raise NotFound(f"no user named {name[:80]!r}")
        changes: dict[str, Any] = {}
        if "role" in body and check_role(body["role"]) != current["role"]:
            changes["role"] = body["role"]
        if "disabled" in body:
            if not isinstance(body["disabled"], bool):
                raise InvalidUser("disabled must be true or false")
            if body["disabled"] != bool(current.get("disabled")):
                changes["disabled"] = body["disabled"]
        if "password" in body:
            salt = secrets.token_bytes(16)
            changes.update(salt=salt, hash=await self._hash(
                check_password_value(body["password"]), salt))
        await self._keep_an_admin(current, changes)
        if changes:
            await self.store.users.update_one({"name": name}, {"$set": changes})
        if changes.get("disabled") or "hash" in changes:
            await self.store.sessions.delete_many({"user": name})
        if changes:
            self.cache.forget_user(name)
        changed = {key: [current.get(key), value] for key, value in changes.items()
                   if key in ("role", "disabled")}
        if "hash" in changes:
            changed["password"] = True
        return await self.get_user(name), changed

    async def _keep_an_admin(self, current: dict, changes: dict) -> None:
        if current["role"] != "admin" or current.get("disabled"):
            return
        if changes.get("role", "admin") == "admin" and not changes.get("disabled"):
            return
        others = await self.store.users.count_documents(
            {"role": "admin", "disabled": {"$ne": True}, "name": {"$ne": current["name"]}},
            limit=1)
        if not others:
            raise Conflict("this is the last enabled admin: make another admin first")

    async def ensure_admin(self, password: str | None = None) -> str | None:
        """Create user `admin` when there are no users; return its password if created."""
        if await self.store.users.count_documents({}, limit=1):
            return None
        password = password or secrets.token_urlsafe(12)
        await self.create_user("admin", password, "admin")
        return password

    async def user(self, name: str) -> User | None:
        """The enabled user of that name (None when there is none or they are disabled)."""
        doc = await self.store.users.find_one({"name": name}, {"name": 1, "role": 1,
                                                               "disabled": 1})
        if doc is None or doc.get("disabled"):
            return None
        return User(doc["name"], doc["role"])

    # -- signing in -------------------------------------------------------------------

    async def sign_in(self, name: str, password: str, address: str) -> User | None:
        """The user, or None for a wrong name or password (or a disabled user); raises
        Throttled (429) when this account or address failed too often lately, without
        checking anything. Records the time of every successful sign-in."""
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
        else:
            await self.store.users.update_one({"name": user.name},
                                              {"$set": {"last_signin_at": utcnow()}})
        return user

    async def check_password(self, name: str, password: str) -> User | None:
        doc = await self.store.users.find_one({"name": name})
        if doc is None or len(password.encode()) > MAX_PASSWORD_BYTES:
            # Spend the same time as a real check so names cannot be probed by timing.
            await self._hash(password[:64], b"0" * 16)
            return None
        hashed = await self._hash(password, doc["salt"])
        if not hmac.compare_digest(hashed, doc["hash"]) or doc.get("disabled"):
            return None
        return User(doc["name"], doc["role"])

    # -- sessions ---------------------------------------------------------------------

    async def create_session(self, user: User) -> str:
        token = secrets.token_urlsafe(32)
        await self.store.sessions.insert_one(
            {"digest": digest(token), "user": user.name,
             "expires_at": utcnow() + self.session_ttl})
        return token

    async def session_user(self, token: str) -> User | None:
        return await self.resolve(Credential.of(SESSION, token))

    async def end_session(self, token: str) -> None:
        credential = Credential.of(SESSION, token)
        await self.store.sessions.delete_one({"digest": credential.digest})
        self.cache.forget(credential)

    # -- API tokens -------------------------------------------------------------------

    async def create_token(self, user: User, note: str = "") -> str:
        """A token with no expiry for `Authorization: Bearer …` (scripts, password
        sign-in); see Tokens.issue for named tokens with an expiry."""
        return (await self.tokens.issue(user.name, {"name": note} if note else {},
                                        capped=False))["token"]

    async def token_user(self, token: str) -> User | None:
        """The enabled user a valid (unexpired, unrevoked) token belongs to."""
        return await self.resolve(Credential.of(BEARER, token))

    # -- resolving credentials ------------------------------------------------------------

    async def resolve(self, credential: Credential) -> User | None:
        """The enabled user a valid credential belongs to, None for any other."""
        known, user = self.cache.get(credential)
        if known:
            return user
        return (await self.resolve_many([credential]))[credential]

    async def resolve_many(self, credentials: Iterable[Credential], *, touch: bool = True
                           ) -> dict[Credential, User | None]:
        """Many credentials at once, in a few reads per collection (tokens, sessions,
        users; see IN_QUERY_MAX); each answer is remembered (see credentials.py).
        `touch`: a token's last use is recorded (not by an open socket's periodic check:
        holding a socket open is not using the token again)."""
        wanted = set(credentials)
        generation = self.cache.generation
        tokens = await self.tokens.resolve_many(
            (c.digest for c in wanted if c.kind == BEARER), touch=touch)
        sessions: dict[str, dict] = {}
        for chunk in in_chunks(c.digest for c in wanted if c.kind == SESSION):
            sessions.update({doc["digest"]: doc async for doc in self.store.sessions.find(
                {"digest": {"$in": chunk}, "expires_at": {"$gt": utcnow()}},
                {"digest": 1, "user": 1, "expires_at": 1})})
        users: dict[str, User] = {}
        for chunk in in_chunks(doc["user"] for doc in [*tokens.values(), *sessions.values()]):
            users.update({doc["name"]: User(doc["name"], doc["role"])
                          async for doc in self.store.users.find(
                              {"name": {"$in": chunk}}, {"name": 1, "role": 1, "disabled": 1})
                          if not doc.get("disabled")})
        answers: dict[Credential, User | None] = {}
        for credential in wanted:
            doc = (tokens if credential.kind == BEARER else sessions).get(credential.digest)
            user = users.get(doc["user"]) if doc else None
            if user is not None and credential.kind == BEARER:
                user = User(user.name, user.role, via=f"token:{doc.get('name') or doc['_id']}")
            answers[credential] = user
            self.cache.put(credential, user, doc.get("expires_at") if doc else None,
                           generation)
        return answers
