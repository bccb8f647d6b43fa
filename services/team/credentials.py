"""Credentials as requests present them, remembered briefly, and the credentials of open
sockets checked again all together.

Why: every HTTP request, every long-poll re-issued after each answer and every open
WebSocket resolves a session cookie or bearer token. Read from the database each time,
a room of a thousand watchers turns into hundreds of lookups a second, and every request
queues behind them. So:

- A resolved credential (and a refused one) is remembered for `auth_cache_s` in a
  bounded LRU (`auth_cache_max_entries`). Every change made through this instance that
  can end or lower a credential (sign-out, a token revoked, a user disabled, re-roled
  or given a new password) forgets what it touches at once, so it holds from the next
  request on; one made through another instance holds within `auth_cache_s`. An entry
  never outlives its credential's own expiry.
- Open sockets do not check their credential one by one: `SocketCredentials` checks the
  credentials of every open socket together, every `ws_auth_recheck_s`, in a few small
  queries per collection, then tells each socket what its credential resolves to now.

May import: team.auth (User) only through type hints; nothing of HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from services.store import utcnow

if TYPE_CHECKING:
    from services.team.auth import User

log = logging.getLogger("ferry.auth")

BEARER = "bearer"
SESSION = "session"
# Credentials asked for in one query. The embedded database's cost of an `$in` grows
# much faster than its list (measured: 50 digests ~10 ms, 1,000 ~2-3 s, during which it
# answers nothing else), so many credentials go as many small queries.
IN_QUERY_MAX = 50


def digest(secret: str) -> str:
    """What Ferry keeps of a token or session secret: its SHA-256, in hex."""
    return hashlib.sha256(secret.encode()).hexdigest()


def in_chunks(values: Iterable[str]) -> list[list[str]]:
    """`values` (deduplicated, in order) cut into lists of at most IN_QUERY_MAX."""
    unique = list(dict.fromkeys(values))
    return [unique[at:at + IN_QUERY_MAX] for at in range(0, len(unique), IN_QUERY_MAX)]


@dataclass(frozen=True)
class Credential:
    """What a request presented: its kind and the digest of its secret (the secret itself
    is never kept)."""

    kind: str          # BEARER (an API token) or SESSION (a browser session cookie)
    digest: str

    @classmethod
    def of(cls, kind: str, secret: str) -> Credential:
        return cls(kind, digest(secret))


class CredentialCache:
    """Resolved credentials (a user, or None for a refused one) for at most `ttl_s`
    seconds each, and never past the credential's own expiry; the least recently used are
    dropped past `max_entries`. `ttl_s` 0 remembers nothing."""

    def __init__(self, ttl_s: float, max_entries: int) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._entries: OrderedDict[Credential, tuple[User | None, float, datetime | None]] = (
            OrderedDict())
        # Bumped by every forget: an answer read before a forget is not remembered after it.
        self.generation = 0

    def get(self, credential: Credential) -> tuple[bool, User | None]:
        """(True, user or None) when remembered and still fresh, else (False, None)."""
        entry = self._entries.get(credential)
        if entry is None:
            return False, None
        user, until, expires_at = entry
        if time.monotonic() >= until or (expires_at is not None and utcnow() >= expires_at):
            del self._entries[credential]
            return False, None
        self._entries.move_to_end(credential)
        return True, user

    def put(self, credential: Credential, user: User | None, expires_at: datetime | None,
            generation: int) -> None:
        """Remember an answer read when the cache was at `generation`."""
        if self.ttl_s <= 0 or generation != self.generation:
            return
        self._entries[credential] = (user, time.monotonic() + self.ttl_s, expires_at)
        self._entries.move_to_end(credential)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, credential: Credential) -> None:
        self.generation += 1
        self._entries.pop(credential, None)

    def forget_user(self, name: str) -> None:
        """Every credential remembered as `name`'s, and every refused one (a user enabled
        again must not stay refused): after a disable, a role or a password change."""
        self.generation += 1
        for credential in [c for c, (user, _, _) in self._entries.items()
                           if user is None or user.name == name]:
            del self._entries[credential]


OnChecked = Callable[["User | None"], Awaitable[None]]


class SocketCredentials:
    """The credentials of open sockets, checked again together every `interval_s`.

    `resolve_many` answers a set of credentials at once (AuthService.resolve_many). A
    socket registers its credential and what to do with the answer; `watch` returns the
    function that ends the registration (call it when the socket closes)."""

    def __init__(self, resolve_many: Callable[[Iterable[Credential]],
                                              Awaitable[dict[Credential, User | None]]],
                 interval_s: float, concurrency: int = 64) -> None:
        self.resolve_many = resolve_many
        self.interval_s = interval_s
        self.concurrency = concurrency
        self._watching: dict[int, tuple[Credential, OnChecked]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task | None = None

    def watch(self, credential: Credential, on_checked: OnChecked) -> Callable[[], None]:
        key = next(self._ids)
        self._watching[key] = (credential, on_checked)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="socket credentials")
        return lambda: self._watching.pop(key, None)

    @property
    def watched(self) -> int:
        return len(self._watching)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.check_all()
            except Exception:
                log.exception("could not check the open sockets' credentials")

    async def check_all(self) -> None:
        """Resolve every watched credential (a few reads per collection), then tell each
        socket, `concurrency` at a time (a socket's answer may read its topics' access)."""
        watching = list(self._watching.items())
        if not watching:
            return
        users = await self.resolve_many({credential for _, (credential, _) in watching})
        semaphore = asyncio.Semaphore(self.concurrency)

        async def tell(key: int, credential: Credential, on_checked: OnChecked) -> None:
            if key not in self._watching:          # closed meanwhile
                return
            async with semaphore:
                try:
                    await on_checked(users.get(credential))
                except Exception:
                    log.exception("a socket's credential check failed")

        await asyncio.gather(*(tell(key, credential, on_checked)
                               for key, (credential, on_checked) in watching))
