"""The big-screen vote page's data: one snapshot, then the release's events as a screen
may see them.

A vote screen hangs on a TV, possibly opened through a read-only wall link, so it is
given what it shows and nothing more: the release's summary, each host's state (for
the canary's health), the vote (who voted, and their comments only when chat text may
be shown), the newest lines of the release's room (only when chat text may be shown)
and the seqs to follow `release:<id>` and `chat:release-<id>` after. The release
topic's events are cut down to the same fields (`screen_events`): no log lines, no
stage output, no failure reasons, which may quote a host's output.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.chat.messages import Messages
from services.chat.rooms import release_room
from services.chat.votes import Votes
from services.errors import NotFound
from services.store import utcnow

if TYPE_CHECKING:
    from services.releases.service import ReleaseService

RELEASE_FIELDS = ("id", "project", "environment", "kind", "ref", "sha", "state", "created_by",
                  "started_at", "finished_at", "duration_ms", "paused_after_batch")
RELEASE_EVENT_FIELDS = ("state", "counts", "paused_after_batch", "max_fail_exceeded")
VOTE_EVENT_FIELDS = ("state", "user", "choice", "go", "no_go", "batch", "rules", "deadline",
                     "outcome")


def screen_topics(release_id: int, chat: bool) -> tuple[str, ...]:
    """The topics a vote screen follows (the room's only when chat text may be shown)."""
    topics = (f"release:{release_id}",)
    return (*topics, release_room(release_id).topic) if chat else topics


def _screen_vote(vote: dict, chat: bool) -> dict:
    votes = [{"user": v["user"], "choice": v["choice"], "ts": v.get("ts"),
              **({"comment": v.get("comment")} if chat else {})} for v in vote["votes"]]
    return {**vote, "votes": votes}


def _screen_event(event: dict, chat: bool) -> dict | None:
    """One event of `release:<id>` as a screen sees it, or None when it sees nothing of it."""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    kind = event["type"]
    if kind == "release":
        kept = {k: data[k] for k in RELEASE_EVENT_FIELDS if k in data}
    elif kind == "batch":
        kept = {k: data.get(k) for k in ("batch", "of", "hosts")}
    elif kind == "host":
        kept = {"host": data.get("host"), "state": data.get("state")}
    elif kind == "vote":
        kept = {k: data[k] for k in VOTE_EVENT_FIELDS if k in data}
        if chat and "comment" in data:
            kept["comment"] = data["comment"]
    else:
        return None
    return {**event, "data": kept}


def screen_events(topic: str, events: list[dict], chat: bool) -> list[dict]:
    """What a vote screen is sent of these events of `topic` (chat events pass whole:
    a screen that may not show chat text is never subscribed to the room)."""
    if topic.startswith("chat:"):
        return events if chat else []
    return [e for e in (_screen_event(event, chat) for event in events) if e is not None]


class VoteScreen:
    """Builds a vote screen's snapshot from the release, its vote and its room."""

    def __init__(self, releases: ReleaseService, votes: Votes, messages: Messages,
                 chat_lines: int) -> None:
        self.releases = releases
        self.votes = votes
        self.messages = messages
        self.chat_lines = chat_lines

    async def snapshot(self, release_id: int, *, chat: bool) -> dict:
        """`{release, hosts, vote, chat, seq, chat_seq, now}`: follow `release:<id>` after
        `seq` and (with chat) `chat:release-<id>` after `chat_seq`; nothing is missed."""
        release = await self.releases.get(release_id)       # NotFound for no release
        try:
            vote = _screen_vote(await self.votes.get(release_id), chat)
        except NotFound:
            vote = None
        runs = release.get("host_runs") or []
        batches = release.get("batches") or []
        summary: dict[str, Any] = {k: release.get(k) for k in RELEASE_FIELDS}
        summary["batches"] = [len(batch) for batch in batches]
        snapshot: dict[str, Any] = {
            "release": summary, "hosts": {run["host"]: run["state"] for run in runs},
            "vote": vote, "chat": None, "seq": release["seq"], "chat_seq": None,
            "show_chat": chat, "now": utcnow()}
        if chat:
            history = await self.messages.history(release_room(release_id), None,
                                                  self.chat_lines)
            snapshot["chat"] = history["messages"]
            snapshot["chat_seq"] = history["head"]
        return snapshot
