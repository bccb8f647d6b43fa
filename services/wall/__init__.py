"""The big-screen status wall: snapshot, coalesced host states, wall links.

Owns: the Board (every host's latest state, running and recent releases, open votes,
current to one `wall` seq), the task that follows the `wall` topic to keep it current,
the vote relay (a paused release's vote, told on `wall` by the release's owner) and
the wall links (`wall_links` collection, links.py).
May import: events (the bus it reads and writes), registry (host names, natural order),
store, settings, errors. Not releases or chat: it is handed two callables instead
(`owns(release_id)`, `vote_of(release_id)`).

The board's hosts and groups are the registry's, kept current in memory: this instance's
host service tells the wall of every host it creates, changes or deletes (`host_changed`,
wired in services/__init__.py), and the registry is re-read every `wall_hosts_refresh_s`
for what other instances changed. A snapshot is then the board as it is, with no
database read, encoded once per version of the board.

Host state changes reach the wall coalesced at the source: a release's record publishes
one `wall` event per `WALL_INTERVAL_S` holding every host changed since the last one,
once, with its latest state and stage (services/releases/records.py), so a 2,000-host
release makes a few wall events a second, not tens of thousands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymongo import DESCENDING

from services.events.bus import EventBus
from services.settings import Settings
from services.store import Store
from services.wall.board import ACTIVE, Board
from services.wall.links import WallLinks

log = logging.getLogger("ferry.wall")
WAIT_S = 25.0
EARLY_EMPTY_PAUSE_S = 1.0


class WallService:
    """The wall's snapshot and links; one per instance, each following the shared topic."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 owns: Callable[[int], bool],
                 vote_of: Callable[[int], Awaitable[dict | None]]) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.owns = owns
        self.vote_of = vote_of
        self.board = Board(settings.wall_max_hosts, settings.wall_recent_releases)
        self.links = WallLinks(store, settings.wall_links_max, settings.wall_link_name_max_bytes)
        self._ready = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._relays: dict[int, asyncio.Task] = {}
        self._registry_lock = asyncio.Lock()
        # Host changes told while the registry is being read, applied again over the read
        # (it may have missed them); None when no read is under way.
        self._told: dict[str, list[str] | None] | None = None

    async def open(self) -> None:
        await self.links.open()
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="wall board"),
                       loop.create_task(self._refresh_loop(), name="wall registry")]

    async def close(self) -> None:
        tasks = [*self._tasks, *self._relays.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._relays.clear()

    async def snapshot(self) -> dict:
        """`{hosts, releases, votes, seq}`: everything up to `seq`; follow `wall` after it."""
        await self._loaded()
        return self.board.snapshot()

    async def snapshot_json(self) -> bytes:
        """`snapshot()` as the JSON bytes the API sends (shared while the board is
        unchanged)."""
        await self._loaded()
        return self.board.snapshot_json()

    async def _loaded(self) -> None:
        """Until the board is loaded; at once after that (no trip through the event loop,
        where a busy process's other work would go first)."""
        if not self._ready.is_set():
            await asyncio.wait_for(self._ready.wait(), self.settings.wall_load_timeout_s)

    def host_changed(self, name: str, groups: list[str] | None) -> None:
        """The registry's word on one host: created or changed (`groups`), or deleted
        (None). Called by this instance's host service right after its write."""
        if groups is None:
            self.board.remove_host(name)
        else:
            self.board.set_host(name, [g for g in groups if isinstance(g, str)])
        if self._told is not None:
            self._told[name] = groups

    # -- loading and following ------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                cursor = await self._load()
                break
            except Exception:
                log.exception("the wall could not load its board; trying again")
                await asyncio.sleep(1)
        self._ready.set()
        await self._follow(cursor)

    async def _load(self) -> int:
        """The registry, the newest releases' host runs and the open votes, then the
        topic's head: events after it are applied over what was read (never older)."""
        cursor = await self.events.head("wall")
        self.board.seq = cursor
        await self._read_registry()
        scan = self.settings.wall_scan_releases
        releases = [doc async for doc in self.store.releases.find(
            {}, {"batches": 0}).sort("_id", DESCENDING).limit(scan)]
        by_id = {doc["_id"]: doc for doc in releases}
        for doc in reversed(releases):
            self.board.load_release(doc)
        if releases:
            async for run in self.store.host_runs.find(
                    {"release_id": {"$in": list(by_id)}},
                    {"host": 1, "release_id": 1, "state": 1, "stage": 1, "started_at": 1,
                     "finished_at": 1}).sort("release_id", DESCENDING):
                self.board.load_run(run, by_id[run["release_id"]])
        for doc in releases:
            if doc.get("state") == "paused":
                await self._relay_vote(doc["_id"])
        return cursor

    async def _read_registry(self) -> None:
        """Host names and groups from the registry (what every instance wrote). A host
        this instance created, changed or deleted while the read was under way is taken
        as it was told, since the read may have passed it before the write."""
        async with self._registry_lock:
            self._told = {}
            try:
                groups = {doc["name"]: [g for g in doc.get("groups") or []
                                        if isinstance(g, str)]
                          async for doc in self.store.hosts.find(
                              {}, {"name": 1, "groups": 1}).limit(self.settings.wall_max_hosts)}
            finally:
                told, self._told = self._told, None
            for name, changed in told.items():
                if changed is None:
                    groups.pop(name, None)
                else:
                    groups[name] = [g for g in changed if isinstance(g, str)]
            self.board.set_registry(groups)

    async def _refresh_loop(self) -> None:
        await self._ready.wait()
        while True:
            await asyncio.sleep(self.settings.wall_hosts_refresh_s)
            try:
                await self._read_registry()
            except Exception:
                log.exception("the wall could not re-read the hosts")

    async def _follow(self, cursor: int) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                events = await self.events.wait("wall", cursor, WAIT_S, internal=True)
            except Exception:
                log.exception("the wall could not read its topic")
                await asyncio.sleep(1)
                continue
            if not events and loop.time() - started < WAIT_S / 2:
                await asyncio.sleep(EARLY_EMPTY_PAUSE_S)     # the bus is closing its clients
            for event in events:
                cursor = event["seq"]
                self.board.apply(event)
                self._on_release(event)

    # -- votes ------------------------------------------------------------------------------

    def _on_release(self, event: dict) -> None:
        data = event["data"]
        if event["type"] != "release" or not isinstance(data, dict):
            return
        release_id = data.get("release_id")
        if data.get("state") == "paused" and isinstance(release_id, int):
            task = self._relays.get(release_id)
            if task is None and self.owns(release_id):
                self._relays[release_id] = asyncio.get_running_loop().create_task(
                    self._relay(release_id), name=f"wall vote {release_id}")

    async def _relay_vote(self, release_id: int) -> None:
        if release_id not in self._relays and self.owns(release_id):
            self._relays[release_id] = asyncio.get_running_loop().create_task(
                self._relay(release_id), name=f"wall vote {release_id}")

    async def _relay(self, release_id: int) -> None:
        """Tell the wall about a paused release's vote, and every change of it, until the
        release is no longer paused. Only the release's owner does, so it is told once."""
        topic = f"release:{release_id}"
        try:
            cursor = await self.events.head(topic)
            await self._tell_vote(release_id)
            while self.board.releases.get(release_id, {}).get("state") == "paused":
                events = await self.events.wait(topic, cursor, WAIT_S, internal=True)
                if not events:
                    await asyncio.sleep(EARLY_EMPTY_PAUSE_S)
                for event in events:
                    cursor = event["seq"]
                    if event["type"] in ("vote", "release"):
                        await self._tell_vote(release_id)
                        break
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the wall stopped relaying the vote of release %s", release_id)
        finally:
            self._relays.pop(release_id, None)

    async def _tell_vote(self, release_id: int) -> None:
        vote = await self.vote_of(release_id)
        if vote is None:
            return
        rules = vote.get("rules") or {}
        data: dict[str, Any] = {
            "release_id": release_id, "state": vote.get("state"), "batch": vote.get("batch"),
            "go": vote.get("go", 0), "no_go": vote.get("no_go", 0),
            "min_go": rules.get("min_go"), "veto": rules.get("veto"),
            "deadline": vote.get("deadline")}
        known = self.board.votes.get(release_id)
        if known is not None and all(known.get(k) == v for k, v in data.items()):
            return
        if known is None and data["state"] != "open":
            return
        await self.events.publish("wall", "vote", data)


__all__ = ["ACTIVE", "WallService"]
