"""Ferry speaking in the rooms: what happens to each release this instance runs.

The narrator reads the bus like any client (no hook in the release engine): it follows
the `wall` topic to learn of releases, and each release's own topic (`release:<id>`,
from seq 0, by cursor) to tell, in the release's room and its project's room:
started (who, ref, SHA, hosts), paused after batch N (and opens the vote when the
strategy has one), continued, host failures gathered into one message per
`chat_failure_window_s` ("3 hosts failed in the last 10 s: web-3, web-7, web-9", never
one message per host, whatever the fleet's size), and the end with counts and duration.
Only the instance that owns a release narrates it, so each message is said once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from typing import TYPE_CHECKING

from services.chat.messages import Messages
from services.chat.rooms import project_room, release_room
from services.chat.votes import Votes
from services.releases.records import ENDED
from services.settings import Settings
from services.store import Store

if TYPE_CHECKING:
    from services.events.bus import EventBus

log = logging.getLogger("ferry.chat")
WAIT_S = 25.0
EARLY_EMPTY_PAUSE_S = 0.5
DONE_REMEMBERED = 1000
ENDINGS = {"succeeded": "succeeded", "failed": "failed", "cancelled": "was cancelled",
           "rolled_back": "was rolled back", "interrupted": "was interrupted"}


def name_list(names: list[str], limit: int) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def count_text(counts: dict) -> str:
    return ", ".join(f"{n} {state.replace('_', ' ')}" for state, n in counts.items() if n) \
        or "no hosts"


class Story:
    """What the narrator knows of one release while following it."""

    def __init__(self, doc: dict) -> None:
        self.doc = doc
        self.started = False
        self.paused = False
        self.failed: list[str] = []
        self.first_failure = 0.0
        self.ended = False


class Narrator:
    """One task following `wall`, one per release this instance runs."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 messages: Messages, votes: Votes) -> None:
        self.settings = settings
        self.store = store
        self.events = events
        self.messages = messages
        self.votes = votes
        self._wall: asyncio.Task | None = None
        self._followers: dict[int, asyncio.Task] = {}
        self._done: deque[int] = deque(maxlen=DONE_REMEMBERED)

    async def open(self) -> None:
        cursor = await self.events.head("wall")
        self._wall = asyncio.get_running_loop().create_task(self._follow_wall(cursor),
                                                            name="chat narrator")

    async def close(self) -> None:
        tasks = [t for t in (self._wall, *self._followers.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._followers.clear()

    async def _wait(self, topic: str, cursor: int, timeout: float) -> list[dict]:  # noqa: ASYNC109
        """The bus's long-poll; an early empty answer (the bus is closing its clients)
        is followed by a pause, so a loop over it never spins."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        events = await self.events.wait(topic, cursor, timeout, internal=True)
        if not events and loop.time() - started < timeout / 2:
            await asyncio.sleep(min(timeout, EARLY_EMPTY_PAUSE_S))
        return events

    async def _follow_wall(self, cursor: int) -> None:
        while True:
            try:
                events = await self._wait("wall", cursor, WAIT_S)
            except Exception:
                log.exception("narrator could not read the wall topic")
                await asyncio.sleep(1)
                continue
            for event in events:
                cursor = event["seq"]
                data = event["data"]
                if event["type"] == "release" and isinstance(data.get("release_id"), int):
                    self._discover(data["release_id"], data.get("state"))

    def _discover(self, release_id: int, state: str | None) -> None:
        if release_id in self._followers or release_id in self._done or state in ENDED:
            return
        self._followers[release_id] = asyncio.get_running_loop().create_task(
            self._follow(release_id), name=f"narrate release {release_id}")

    async def _follow(self, release_id: int) -> None:
        try:
            doc = await self.store.releases.find_one({"_id": release_id})
            if doc is None or doc.get("owner") != self.settings.instance_id:
                return
            story, cursor = Story(doc), 0
            if doc.get("resumed_at"):      # taken up after a restart: told from here on
                story.started = story.paused = True
                cursor = await self.events.head(f"release:{release_id}")
                await self._say(story, f"Ferry restarted: release #{release_id} is still "
                                f"paused after batch {doc.get('paused_after_batch')}.")
            await self._narrate(story, cursor)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("narrator stopped following release %s", release_id)
        finally:
            self._followers.pop(release_id, None)
            self._done.append(release_id)

    async def _narrate(self, story: Story, cursor: int) -> None:
        topic = f"release:{story.doc['_id']}"
        loop = asyncio.get_running_loop()
        window = self.settings.chat_failure_window_s
        while not story.ended:
            timeout = WAIT_S
            if story.failed:
                timeout = max(0.0, story.first_failure + window - loop.time())
            events = await self._wait(topic, cursor, timeout)
            for event in events:
                cursor = event["seq"]
                try:
                    await self._on_event(story, event)
                except Exception:      # one event told badly must not end the story
                    log.exception("narrator: event %s of %s", cursor, topic)
                if story.ended:
                    break
            if story.failed and loop.time() >= story.first_failure + window:
                await self._tell_failures(story)

    async def _on_event(self, story: Story, event: dict) -> None:
        data = event["data"]
        if event["type"] == "host" and data.get("state") == "failed":
            if not story.failed:
                story.first_failure = asyncio.get_running_loop().time()
            story.failed.append(str(data.get("host")))
        elif event["type"] == "release":
            await self._on_state(story, data)

    async def _on_state(self, story: Story, data: dict) -> None:
        state, release_id = data.get("state"), story.doc["_id"]
        if data.get("sha"):
            story.doc["sha"] = data["sha"]
        if state == "running" and not story.started and story.doc.get("sha"):
            story.started = True
            await self._say(story, self._started_text(story.doc))
        elif state == "running" and story.paused and data.get("paused_after_batch", 0) is None:
            story.paused = False
            await self._say(story, f"Release #{release_id} continues.")
        elif state == "paused":
            story.paused = True
            await self._tell_failures(story)
            batch = data.get("paused_after_batch")
            total = len(story.doc.get("batches") or [])
            await self._say(story, f"Release #{release_id} paused after batch {batch} of "
                            f"{total} ({count_text(data.get('counts') or {})}); waiting for "
                            "a promote" + (" or the vote." if _has_vote(story.doc) else "."))
            if _has_vote(story.doc) and isinstance(batch, int):
                await self.votes.on_pause(story.doc, batch)
        elif data.get("max_fail_exceeded"):
            await self._tell_failures(story)
            await self._say(story, f"Release #{release_id}: more than {data.get('limit')} "
                            "hosts failed (max_fail); no new hosts will start.")
        elif state in ENDED:
            story.ended = True
            await self._tell_failures(story)
            doc = await self.store.releases.find_one({"_id": release_id}) or story.doc
            await self._say(story, self._ended_text(doc))
            await self.votes.release_ended(dict(doc, id=release_id))

    async def _tell_failures(self, story: Story) -> None:
        if not story.failed:
            return
        names, story.failed = story.failed, []
        elapsed = asyncio.get_running_loop().time() - story.first_failure
        seconds = max(1, min(math.ceil(elapsed), math.ceil(self.settings.chat_failure_window_s)))
        hosts = "host" if len(names) == 1 else "hosts"
        await self._say(story, f"{len(names)} {hosts} failed in the last {seconds} s: "
                        f"{name_list(names, self.settings.chat_failure_names_max)}")

    def _started_text(self, doc: dict) -> str:
        hosts = doc.get("hosts") or []
        what = "Rollback" if doc.get("kind") == "rollback" else "Release"
        return (f"{what} #{doc['_id']} of {doc.get('project')} started by "
                f"{doc.get('created_by')}: {doc.get('ref')} at {str(doc.get('sha'))[:12]} "
                f"to {len(hosts)} host{'s' if len(hosts) != 1 else ''} "
                f"({name_list(hosts, self.settings.chat_failure_names_max)}).")

    @staticmethod
    def _ended_text(doc: dict) -> str:
        state = doc.get("state")
        text = f"Release #{doc['_id']} {ENDINGS.get(state, state)}: " \
               f"{count_text(doc.get('counts') or {})}"
        if doc.get("duration_ms") is not None:
            text += f" in {doc['duration_ms'] / 1000:.1f} s"
        if doc.get("reason") and state != "succeeded":
            text += f" ({doc['reason']})"
        return text + "."

    async def _say(self, story: Story, text: str) -> None:
        """Post in both rooms; a message that cannot be stored is logged, and the story
        (and the vote it may open next) goes on."""
        rooms = [release_room(story.doc["_id"])]
        if story.doc.get("project"):
            rooms.append(project_room(story.doc["project"]))
        for room in rooms:
            try:
                await self.messages.system(room, text)
            except Exception:
                log.exception("could not say %r in %s", text[:80], room.name)


def _has_vote(doc: dict) -> bool:
    return bool((doc.get("strategy") or {}).get("vote"))
