"""Timers of releases that wait: at its due time a scheduled release is taken through its
gates, a release awaiting approval expires. The due time is stored in the release
(`due_at`), so the timers are re-armed from the database at start-up; one that came due
while Ferry was down fires at once. The timer only wakes the gate logic up, which decides
with an atomic update of the release, so two instances firing together do no harm.

Also `not_before`: reading the time a user asked a release to start at.

May import: settings, errors, releases.freeze.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from services.errors import Invalid
from services.releases.freeze import parse_time
from services.settings import Settings
from services.store import utcnow

log = logging.getLogger("ferry.gates")


def parse_not_before(value: Any, settings: Settings) -> datetime | None:
    """The start time a release was asked for: in the future, at most
    `schedule_max_ahead_s` ahead; None when none was asked."""
    if value is None:
        return None
    when = parse_time(value, "not_before")
    now = utcnow()
    if when <= now:
        raise Invalid("not_before must be in the future")
    if when > now + timedelta(seconds=settings.schedule_max_ahead_s):
        raise Invalid(f"not_before may be at most {settings.schedule_max_ahead_s // 86400} "
                      "days ahead")
    return when


class Timers:
    """One timer per waiting release, in memory; the database holds the truth."""

    def __init__(self, fire: Callable[[int], Awaitable[None]]) -> None:
        self._fire = fire
        self._tasks: dict[int, asyncio.Task] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def arm(self, release_id: int, at: datetime) -> None:
        """Call `fire(release_id)` at `at` (at once if past); replaces an earlier timer."""
        self.disarm(release_id)
        self._tasks[release_id] = asyncio.get_running_loop().create_task(
            self._wait(release_id, at), name=f"release {release_id} timer")

    def disarm(self, release_id: int) -> None:
        task = self._tasks.pop(release_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _wait(self, release_id: int, at: datetime) -> None:
        # Slept in steps of at most an hour, so a clock that jumps is noticed within one.
        for _ in range(24 * 366):
            delay = (at - utcnow()).total_seconds()
            if delay <= 0:
                break
            await asyncio.sleep(min(delay, 3600.0))
        if self._tasks.get(release_id) is asyncio.current_task():
            del self._tasks[release_id]
        try:
            await self._fire(release_id)
        except Exception:
            log.exception("the timer of release %s failed", release_id)

    async def close(self) -> None:
        tasks, self._tasks = list(self._tasks.values()), {}
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
