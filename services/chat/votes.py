"""The go/no-go vote held while a release is paused after a batch.

Rules come from the release's strategy (`vote`, see strategies.parse_vote); state lives
in the `votes` collection, one document per release and pause (`<release>:<batch>`), so
it outlives the process: `{release_id, batch, state: open|passed|failed|expired, rules,
opened_at, deadline, votes: [{user, choice, comment, ts}], outcome}`.

Each deployer votes `go` or `no_go` once and may change it while the vote is open. It
passes at `min_go` go votes (and, with `veto`, no no-go): the release is promoted
exactly as by the API. A no-go under veto fails it, as does the deadline with
`on_timeout: cancel`: the release is cancelled and, with `auto_rollback`, the hosts it
switched are switched back. A plain promote or cancel closes the vote with that outcome,
recorded as an override. Every vote and the outcome are events on `release:<id>` and
system messages in the release's room (openings and outcomes in its project's too).

Votes are decided on the instance running the release (it holds the release's lease and
writes its topic); one lock per release orders concurrent votes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING, ReturnDocument

from services.chat.messages import Messages, clean_text
from services.chat.rooms import project_room, release_room
from services.errors import Conflict, FerryError, Forbidden, Invalid, NotFound
from services.settings import Settings
from services.store import Store, utcnow
from services.team.audit import FERRY, AuditLog
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.releases.service import ReleaseService
    from services.team.access import Access

log = logging.getLogger("ferry.votes")
CHOICES = ("go", "no_go")
LABEL = {"go": "go", "no_go": "no-go"}


def public_vote(doc: dict) -> dict:
    votes = doc.get("votes", [])
    return {"release_id": doc["release_id"], "batch": doc["batch"], "state": doc["state"],
            "rules": doc["rules"], "opened_at": doc["opened_at"], "deadline": doc["deadline"],
            "votes": votes, "go": sum(v["choice"] == "go" for v in votes),
            "no_go": sum(v["choice"] == "no_go" for v in votes),
            "outcome": doc.get("outcome")}


def verdict(rules: dict, votes: list[dict]) -> str | None:
    """"passed", "failed" or None (still open) for these votes under these rules."""
    go = sum(v["choice"] == "go" for v in votes)
    no_go = sum(v["choice"] == "no_go" for v in votes)
    if rules["veto"] and no_go:
        return "failed"
    if go >= rules["min_go"]:
        return "passed"
    return None


class Votes:
    """Opens, counts, times and decides votes; promotes or cancels through ReleaseService."""

    def __init__(self, settings: Settings, store: Store, events: EventBus,
                 releases: ReleaseService, messages: Messages, access: Access,
                 audit: AuditLog | None = None) -> None:
        self.settings = settings
        self.audit = audit
        self.access = access
        self.collection = store.db["votes"]
        self.events = events
        self.releases = releases
        self.messages = messages
        self._locks: dict[int, asyncio.Lock] = {}
        self._timers: dict[int, asyncio.Task] = {}

    async def open(self) -> None:
        await self.collection.create_index([("release_id", 1), ("batch", DESCENDING)])
        async for doc in self.collection.find({"state": "open", "deadline": {"$ne": None}}):
            if doc["release_id"] in self.releases.runs:
                self._start_timer(doc)

    async def close(self) -> None:
        timers, self._timers = list(self._timers.values()), {}
        for task in timers:
            task.cancel()
        for task in timers:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _lock(self, release_id: int) -> asyncio.Lock:
        return self._locks.setdefault(release_id, asyncio.Lock())

    # -- reading ----------------------------------------------------------------------

    async def latest(self, release_id: int) -> dict | None:
        return await self.collection.find_one({"release_id": release_id},
                                              sort=[("batch", DESCENDING)])

    async def get(self, release_id: int) -> dict:
        """The release's current (or last) vote; NotFound when it never had one."""
        release = await self.releases.find(release_id)
        doc = await self.latest(release_id)
        batch = release.get("paused_after_batch")
        rules = (release.get("strategy") or {}).get("vote")
        if release["state"] == "paused" and rules and batch and (
                doc is None or doc["batch"] < batch):
            # Paused a moment ago: the vote is being opened; show it as it will be.
            return public_vote({"release_id": release_id, "batch": batch, "state": "open",
                                "rules": rules, "opened_at": None, "deadline": None,
                                "votes": []})
        if doc is None:
            raise NotFound(f"release {release_id} has no vote")
        return public_vote(doc)

    # -- opening ----------------------------------------------------------------------

    async def on_pause(self, release: dict, batch: int) -> None:
        """The engine paused `release` after `batch`: open its vote if the strategy has
        one. Never raises: a vote that cannot open leaves a plain pause."""
        try:
            if (release.get("strategy") or {}).get("vote"):
                await self.ensure_open(dict(release, id=release["_id"]), batch)
        except Exception:
            log.exception("could not open the vote of release %s", release.get("_id"))

    async def ensure_open(self, release: dict, batch: int) -> dict:
        """The vote of this pause, opened (once, whoever asks first) if needed."""
        release_id = release["id"]
        rules = release["strategy"]["vote"]
        now = utcnow()
        deadline = now + timedelta(seconds=rules["timeout_s"]) if rules["timeout_s"] else None
        before = await self.collection.find_one_and_update(
            {"_id": f"{release_id}:{batch}"},
            {"$setOnInsert": {"release_id": release_id, "batch": batch, "state": "open",
                              "rules": rules, "opened_at": now, "deadline": deadline,
                              "votes": [], "outcome": None}},
            upsert=True, return_document=ReturnDocument.BEFORE)
        doc = await self.collection.find_one({"_id": f"{release_id}:{batch}"})
        if before is None:
            await self._announce_open(release, doc)
            self._start_timer(doc)
        return doc

    async def _announce_open(self, release: dict, doc: dict) -> None:
        rules = doc["rules"]
        await self.events.publish(f"release:{doc['release_id']}", "vote",
                                  {"state": "open", **_brief(doc)})
        parts = [f"{rules['min_go']} go vote{'s' if rules['min_go'] != 1 else ''} needed"]
        if rules["veto"]:
            parts.append("one no-go cancels")
        if rules["timeout_s"]:
            parts.append(f"after {rules['timeout_s']:g} s: {rules['on_timeout']}")
        text = (f"Vote open on release #{doc['release_id']} after batch {doc['batch']}: "
                f"{', '.join(parts)}. Vote with /go or /nogo.")
        await self._say(release, text, both=True)

    # -- voting -----------------------------------------------------------------------

    async def cast(self, user: User, release_id: int, choice: Any, comment: Any = None) -> dict:
        """Record (or change) `user`'s vote, then decide the vote if it is decided."""
        if choice not in CHOICES:
            raise Invalid('choice must be "go" or "no_go"')
        if isinstance(comment, str) and not comment.strip():
            comment = None                       # an empty comment is no comment
        if comment is not None:
            comment = clean_text(comment, self.settings.vote_comment_max_chars, "comment")
        await self.access.require_release(user, release_id, "vote")
        release = await self.releases.find(release_id)
        async with self._lock(release_id):
            doc = await self._open_vote(release)
            if doc["rules"]["exclude_initiator"] and user.name == release.get("created_by"):
                raise Forbidden("the person who started the release may not vote on it")
            entry = {"user": user.name, "choice": choice, "comment": comment, "ts": utcnow()}
            changed = any(v["user"] == user.name for v in doc["votes"])
            votes = [v for v in doc["votes"] if v["user"] != user.name] + [entry]
            doc = await self.collection.find_one_and_update(
                {"_id": doc["_id"], "state": "open"}, {"$set": {"votes": votes}},
                return_document=ReturnDocument.AFTER)
            if doc is None:
                raise Conflict(f"the vote on release {release_id} closed meanwhile")
            await self._announce_vote(release, doc, entry, changed)
            result = verdict(doc["rules"], doc["votes"])
            if result is not None:
                doc = await self._decide(release, doc, result, how="votes", by=None)
        return public_vote(doc)

    async def _open_vote(self, release: dict) -> dict:
        doc = await self.latest(release["id"])
        batch = release.get("paused_after_batch")
        if release["state"] == "paused" and batch and (release.get("strategy") or {}).get(
                "vote") and (doc is None or doc["batch"] < batch):
            doc = await self.ensure_open(release, batch)
        if doc is None or doc["state"] != "open":
            raise Conflict(f"release {release['id']} has no open vote")
        if release["state"] != "paused":
            raise Conflict(f"release {release['id']} is {release['state']}; its vote can no "
                           "longer change it")
        return doc

    async def _announce_vote(self, release: dict, doc: dict, entry: dict,
                             changed: bool) -> None:
        public = public_vote(doc)
        await self.events.publish(f"release:{doc['release_id']}", "vote", {
            "state": "open", "user": entry["user"], "choice": entry["choice"],
            "comment": entry["comment"], "go": public["go"], "no_go": public["no_go"],
            **_brief(doc)})
        verb = "changes their vote to" if changed else "votes"
        text = (f"{entry['user']} {verb} {LABEL[entry['choice']]} "
                f"({public['go']} go of {doc['rules']['min_go']}, {public['no_go']} no-go)")
        if entry["comment"]:
            text += f": {entry['comment']}"
        await self._say(release, text)

    # -- deciding ---------------------------------------------------------------------

    async def _decide(self, release: dict, doc: dict, result: str, *, how: str,
                      by: str | None, action: str | None = None) -> dict:
        """Close the vote (once) and act on it: promote or cancel the release."""
        if action is None:
            action = "promote" if result == "passed" else "cancel"
        outcome = {"result": result, "how": how, "by": by, "action": action, "ts": utcnow()}
        closed = await self.collection.find_one_and_update(
            {"_id": doc["_id"], "state": "open"}, {"$set": {"state": result, "outcome": outcome}},
            return_document=ReturnDocument.AFTER)
        if closed is None:
            return await self.collection.find_one({"_id": doc["_id"]})
        self._stop_timer(doc["release_id"])
        await self.events.publish(f"release:{doc['release_id']}", "vote",
                                  {"state": result, "outcome": outcome, **_brief(closed)})
        await self._say(release, _outcome_text(closed, outcome), both=True)
        if how != "override":
            await self._act(release, action)
            if self.audit is not None and action in ("promote", "cancel"):
                # Ferry acts on the vote's outcome (each vote was recorded as cast).
                await self.audit.record(FERRY, f"release.{action}", str(release["id"]),
                                        project=release.get("project"),
                                        details={"vote": result, "how": how})
        return closed

    async def _act(self, release: dict, action: str) -> None:
        release_id = release["id"]
        try:
            if action == "promote":
                await self.releases.promote(release_id)
            elif action == "cancel":
                await self.releases.cancel(release_id, rollback=True,
                                           reason="the go/no-go vote did not pass")
        except FerryError as error:
            log.warning("vote on release %s could not %s it: %s", release_id, action, error)
            await self._say(release, f"Could not {action} release #{release_id}: {error}")

    async def override(self, user: User, release_id: int, action: str) -> dict:
        """A plain promote or cancel (API or chat command): do it, then close an open
        vote with that outcome, recorded as an override by `user`."""
        release_id = int(release_id)
        async with self._lock(release_id):
            if action == "promote":
                result = await self.releases.promote(release_id)
            else:
                result = await self.releases.cancel(release_id)
            doc = await self.latest(release_id)
            if doc is not None and doc["state"] == "open":
                release = await self.releases.find(release_id)
                await self._decide(release, doc, "passed" if action == "promote" else "failed",
                                   how="override", by=user.name, action=action)
        return result

    async def release_ended(self, release: dict) -> None:
        """The release ended by another way (max_fail, a crash of a host...): an open
        vote can no longer change it. An interrupted release keeps its vote open."""
        if release["state"] == "interrupted":
            return
        async with self._lock(release["id"]):
            doc = await self.latest(release["id"])
            if doc is not None and doc["state"] == "open":
                await self._decide(release, doc, "expired", how="release_ended", by=None,
                                   action=release["state"])
        self._locks.pop(release["id"], None)

    # -- the deadline -----------------------------------------------------------------

    def _start_timer(self, doc: dict) -> None:
        if doc["deadline"] is None or doc["state"] != "open":
            return
        self._stop_timer(doc["release_id"])
        self._timers[doc["release_id"]] = asyncio.get_running_loop().create_task(
            self._expire(doc), name=f"vote {doc['_id']}")

    def _stop_timer(self, release_id: int) -> None:
        task = self._timers.pop(release_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _expire(self, doc: dict) -> None:
        delay = (doc["deadline"] - utcnow()).total_seconds()
        await asyncio.sleep(max(0.0, delay))
        try:
            release = await self.releases.find(doc["release_id"])
            async with self._lock(doc["release_id"]):
                current = await self.collection.find_one({"_id": doc["_id"]})
                if current is None or current["state"] != "open":
                    return
                on_timeout = current["rules"]["on_timeout"]
                if on_timeout == "wait":
                    self._timers.pop(doc["release_id"], None)
                    await self._say(release, f"The vote on release #{doc['release_id']} is "
                                    "past its deadline; still waiting for votes, a promote "
                                    "or a cancel.")
                    return
                await self._decide(release, current, "expired", how="timeout", by=None,
                                   action=on_timeout)
        except Exception:
            log.exception("could not expire the vote %s", doc["_id"])

    async def _say(self, release: dict, text: str, *, both: bool = False) -> None:
        """Post in the release's room (and its project's); never stops a decision."""
        rooms = [release_room(release["id"])]
        if both and release.get("project"):
            rooms.append(project_room(release["project"]))
        for room in rooms:
            try:
                await self.messages.system(room, text)
            except Exception:
                log.exception("could not say %r in %s", text[:80], room.name)


def _brief(doc: dict) -> dict:
    return {"batch": doc["batch"], "rules": doc["rules"], "deadline": doc["deadline"]}


def _outcome_text(doc: dict, outcome: dict) -> str:
    release_id = doc["release_id"]
    public = public_vote(doc)
    tally = f"{public['go']} go, {public['no_go']} no-go"
    if outcome["how"] == "override":
        verb = "promoted" if outcome["action"] == "promote" else "cancelled"
        return (f"Vote on release #{release_id} closed: {outcome['by']} {verb} the release "
                f"(override; {tally}).")
    if outcome["how"] == "timeout":
        return (f"Vote on release #{release_id} expired ({tally}): "
                f"{'promoting' if outcome['action'] == 'promote' else 'cancelling'}.")
    if outcome["how"] == "release_ended":
        return f"Vote on release #{release_id} closed: the release {outcome['action']}."
    if outcome["result"] == "passed":
        return f"Vote on release #{release_id} passed ({tally}): continuing."
    return f"Vote on release #{release_id} failed ({tally}): cancelling."
