"""Following a release to its end over the event stream, for `deploy --wait` and `watch`:
a snapshot, then every event after its `seq` (so nothing is missed between the two), until
the release reaches a final state or the timeout passes."""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field

from cli.client import FerryClient

FINAL = {"succeeded": 0, "failed": 1, "cancelled": 1, "rolled_back": 1, "interrupted": 1,
         "rejected": 1, "expired": 1}
EXIT_TIMEOUT = 3


@dataclass
class Progress:
    """What the display shows: counts, hosts that failed, and the release's state."""

    release_id: int
    state: str = "pending"
    total: int = 0
    hosts: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def count(self, *states: str) -> int:
        return sum(1 for state in self.hosts.values() if state in states)

    @property
    def done(self) -> int:
        return self.count("ok", "failed", "skipped", "cancelled", "rolled_back", "interrupted")

    def eta_s(self) -> float | None:
        done, elapsed = self.done, time.monotonic() - self.started
        if not done or done >= self.total:
            return None
        return elapsed / done * (self.total - done)


class Display:
    """What a follower reports to; the terminal and plain-line versions are in render.py."""

    def started(self, progress: Progress) -> None: ...
    def changed(self, progress: Progress) -> None: ...
    def host_failed(self, progress: Progress, host: str, reason: str) -> None: ...
    def note(self, text: str) -> None: ...
    def finished(self, progress: Progress, release: dict | None) -> None: ...


def apply_snapshot(progress: Progress, release: dict) -> None:
    progress.state = release["state"]
    runs = release.get("host_runs") or []
    progress.total = len(runs) or progress.total
    for run in runs:
        progress.hosts[run["host"]] = run["state"]
        if run.get("reason"):
            progress.reasons[run["host"]] = run["reason"]


def apply_event(progress: Progress, event: dict, display: Display) -> None:
    data = event.get("data") or {}
    if event["type"] == "release" and data.get("state"):
        progress.state = data["state"]
        display.changed(progress)
    elif event["type"] == "host" and data.get("host"):
        host, state = data["host"], data.get("state")
        before = progress.hosts.get(host)
        progress.hosts[host] = state
        progress.total = max(progress.total, len(progress.hosts))
        if state == "failed" and before != "failed":
            progress.reasons[host] = data.get("reason") or ""
            display.host_failed(progress, host, data.get("reason") or "")
        display.changed(progress)


async def follow(client: FerryClient, release_id: int, display: Display, *,
                 timeout_s: float | None, websocket: bool = True) -> tuple[int, dict | None]:
    """Follow until a final state: (exit code, final release); EXIT_TIMEOUT on timeout."""
    progress = Progress(release_id)
    try:
        async with asyncio.timeout(timeout_s):
            release = await client.get(f"/api/releases/{release_id}")
            apply_snapshot(progress, release)
            display.started(progress)
            if release["state"] not in FINAL:
                await _stream(client, progress, release.get("seq", 0), display, websocket)
                release = await client.get(f"/api/releases/{release_id}")
                apply_snapshot(progress, release)
    except TimeoutError:
        display.finished(progress, None)
        return EXIT_TIMEOUT, None
    display.finished(progress, release)
    return FINAL[release["state"]], release


async def _stream(client: FerryClient, progress: Progress, after: int, display: Display,
                  websocket: bool) -> None:
    events = client.events(f"release:{progress.release_id}", after, websocket=websocket,
                           on_fallback=lambda why: display.note(
                               f"event stream unavailable ({why}); long-polling"))
    async with contextlib.aclosing(events):
        async for event in events:
            apply_event(progress, event, display)
            if progress.state in FINAL:
                return
