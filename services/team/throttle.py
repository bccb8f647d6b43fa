"""Sign-in throttling: failed passwords are counted per account and per client address.

After `signin_max_failures` failures on one account, or `signin_address_max_failures`
from one address (across any number of account names), within `signin_window_s`, that
account or address is locked for `signin_lockout_s`; each further lockout doubles the
wait, up to `signin_lockout_max_s`. A locked sign-in is answered at once (429) without
checking the password, so a guesser learns nothing and spends no hashing time; once
the wait is over the right password works again.

Attempts still being checked count too: a burst of concurrent guesses cannot all slip
past the limit before the first of them fails.

The state lives in memory, per instance, in two LRU tables of at most
`signin_throttle_max_entries` each; an entry expires a window after its last failure or
lockout. A flood of distinct names or addresses therefore cannot grow memory without
bound: it can only push the least recently used entries out. With several instances
behind one address, each instance counts on its own (the limit multiplies by the
number of instances); the password hash (scrypt) stays the cost of every guess.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from services.errors import FerryError
from services.settings import Settings


class Throttled(FerryError):
    """Too many failed sign-ins: try again after `retry_after` seconds."""

    status = 429

    def __init__(self, retry_after: float) -> None:
        self.retry_after = max(1, math.ceil(retry_after))
        super().__init__(f"too many failed sign-ins; try again in {self.retry_after} s")


@dataclass
class _Entry:
    window_start: float
    failures: int = 0
    pending: int = 0
    locked_until: float = 0.0
    lockouts: int = 0


class _Table:
    """One key space (account names or addresses): an LRU of counters with a limit."""

    def __init__(self, limit: int, settings: Settings, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = settings.signin_window_s
        self.lockout = settings.signin_lockout_s
        self.lockout_max = settings.signin_lockout_max_s
        self.max_entries = settings.signin_throttle_max_entries
        self.clock = clock
        self.entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self.entries)

    def _expired(self, entry: _Entry, now: float) -> bool:
        return entry.pending == 0 and now >= max(entry.window_start,
                                                 entry.locked_until) + self.window

    def _entry(self, key: str, now: float) -> _Entry:
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, now):
            entry = _Entry(window_start=now)
            self.entries[key] = entry
        elif now >= entry.window_start + self.window and now >= entry.locked_until:
            entry.window_start, entry.failures = now, 0       # a new window
        self.entries.move_to_end(key)
        self._trim(now)
        return entry

    def _trim(self, now: float) -> None:
        """Drop expired entries from the old end, then the least recently used ones."""
        while self.entries:
            entry = next(iter(self.entries.values()))
            if not self._expired(entry, now) and len(self.entries) <= self.max_entries:
                return
            self.entries.popitem(last=False)

    def wait(self, key: str, now: float) -> float:
        """Seconds until `key` may try again; 0 when it may now."""
        entry = self.entries.get(key)
        if entry is None or self._expired(entry, now):
            return 0.0
        if entry.locked_until > now:
            return entry.locked_until - now
        if now < entry.window_start + self.window and (
                entry.failures + entry.pending >= self.limit):
            return 1.0          # the rest of the allowance is being checked right now
        return 0.0

    def begin(self, key: str, now: float) -> None:
        self._entry(key, now).pending += 1

    def end(self, key: str, now: float, failed: bool) -> None:
        entry = self._entry(key, now)
        entry.pending = max(0, entry.pending - 1)
        if not failed:
            return
        entry.failures += 1
        if entry.failures >= self.limit:
            entry.locked_until = now + min(self.lockout * 2 ** min(entry.lockouts, 30),
                                           self.lockout_max)
            entry.lockouts += 1
            entry.window_start, entry.failures = entry.locked_until, 0

    def forget(self, key: str) -> None:
        self.entries.pop(key, None)


class SigninThrottle:
    """Counts sign-in attempts per account and per address; refuses locked ones."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.accounts = _Table(settings.signin_max_failures, settings, clock)
        self.addresses = _Table(settings.signin_address_max_failures, settings, clock)

    def begin(self, name: str, address: str) -> None:
        """Reserve an attempt, or raise Throttled with how long to wait."""
        wait = self.wait(name, address)
        if wait > 0:
            raise Throttled(wait)
        now = self.clock()
        self.accounts.begin(name, now)
        self.addresses.begin(address, now)

    def end(self, name: str, address: str, ok: bool | None) -> None:
        """The attempt's outcome: a failure counts; a success clears the account (not the
        address, or one valid account would reset an address's count for guessing
        others); None (the check itself broke) only gives the reservation back."""
        now = self.clock()
        self.accounts.end(name, now, failed=ok is False)
        self.addresses.end(address, now, failed=ok is False)
        if ok:
            self.accounts.forget(name)

    def wait(self, name: str, address: str) -> float:
        """Seconds before this account may try again from this address (0: now)."""
        now = self.clock()
        return max(self.accounts.wait(name, now), self.addresses.wait(address, now))
