"""ReleaseService: start, cancel, promote, retry and roll back releases; the deploy lock
and release ownership as leases in the database; crash recovery at start-up."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import DESCENDING, ReturnDocument

from services.errors import Conflict, Invalid, NotFound, Unavailable
from services.git.refs import validate_ref
from services.registry import validation as check
from services.registry.hosts import natural_key
from services.releases.context import Engine
from services.releases.locks import ACTIVE, DeployLock
from services.releases.records import ReleaseRecord, new_host_run, public_host_run, switched
from services.releases.recovery import interrupt
from services.releases.run import ReleaseRun
from services.releases.strategies import Strategy
from services.store import utcnow
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.registry.hosts import HostService
    from services.registry.projects import ProjectService

log = logging.getLogger("ferry.releases")
HOST_LOG_PAGE = 5000
RETRYABLE = ("failed", "skipped", "cancelled", "interrupted", "pending")
MAX_ID = 2**63 - 1  # release ids are the database's int64


def parse_release_id(text: str) -> int:
    """A release id as a user wrote it (a path part); one no release can have is unknown."""
    # isascii: "²".isdigit() is True, yet int("²") fails
    if not (text.isascii() and text.isdigit()) or len(text) > 19 or not 0 < int(text) <= MAX_ID:
        raise NotFound(f"no release {text[:40]}")
    return int(text)


def public_release(doc: dict) -> dict:
    return {("id" if key == "_id" else key): value for key, value in doc.items()
            if key not in ("lease_expires_at",)}


class ReleaseService:
    """Owns the releases running in this process and the leases that prove it."""

    def __init__(self, engine: Engine, events: EventBus, projects: ProjectService,
                 hosts: HostService) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        self.events = events
        self.projects = projects
        self.hosts = hosts
        self.locks = DeployLock(self.store, self.settings)
        self.runs: dict[int, tuple[ReleaseRun, asyncio.Task]] = {}
        self._lease_task: asyncio.Task | None = None
        self.stopping = False

    # -- lifetime -------------------------------------------------------------------

    async def open(self) -> None:
        self.events.register_topic("release:", self._topic_exists)
        await self.recover(at_start=True)
        self._lease_task = asyncio.create_task(self._lease_loop(), name="release leases")

    def begin_stop(self) -> None:
        """From the moment shutdown begins: no new release, and no host starts in a running
        one. Called at the signal, before anything else stops, so nothing is started
        that the shutdown would then cut off."""
        self.stopping = True
        for run, _ in self.runs.values():
            run.stopping.set()

    async def close(self) -> None:
        """Stop scheduling; give running hosts the grace period; the rest are interrupted."""
        self.begin_stop()
        if self._lease_task:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._lease_task
        runs = list(self.runs.values())
        await asyncio.gather(*(run.stop(self.settings.shutdown_grace_s, task)
                               for run, task in runs), return_exceptions=True)

    async def _topic_exists(self, topic: str, user: User) -> bool:
        try:
            release_id = parse_release_id(topic.split(":", 1)[1])
        except NotFound:
            return False
        return await self.store.releases.count_documents({"_id": release_id}, limit=1) > 0

    # -- starting releases ----------------------------------------------------------

    async def create(self, user: User, body: dict) -> dict:
        """A deploy of `ref` of a project to hosts; 409 if the project is locked."""
        take_over = check.boolean(body.get("take_over", False), "take_over")   # before git
        project = await self.projects.get(_required(body, "project"))
        ref = _required(body, "ref")
        try:
            validate_ref(ref)
        except ValueError as error:
            raise Invalid(str(error)) from None
        hosts = await self.hosts.select(body.get("hosts") or project.get("hosts"),
                                                 body.get("groups") or project.get("groups"))
        strategy = Strategy.parse(body.get("strategy") or project.get("strategy"))
        previous = await self.last_success(project["name"], project["environment"])
        extra = {"previous_release": previous["_id"] if previous else None,
                 "previous_sha": previous["sha"] if previous else None}
        # The SHA is resolved by the run, as its first step: a remote that stalls must not
        # hold this request (the release then fails with git's error as its reason).
        return await self._start(user, project, hosts, strategy, "deploy", ref, None, extra,
                                 take_over)

    async def retry(self, user: User, release_id: int) -> dict:
        """Deploy the same commit again to the hosts of a release that did not succeed."""
        source = await self._get_doc(release_id)
        if source["state"] in ACTIVE:
            raise Conflict(f"release {release_id} is still {source['state']}")
        names = [run["host"] async for run in self.store.host_runs.find(
            {"release_id": release_id, "state": {"$in": list(RETRYABLE)}})]
        if not names:
            raise Invalid(f"release {release_id} has no failed hosts to retry")
        project = await self.projects.get(source["project"])
        hosts = await self.hosts.select(names, None)
        strategy = Strategy.parse(source["strategy"])
        kind = "rollback" if source["kind"] == "rollback" else "retry"
        extra = {"retry_of": release_id, "target_release": source.get("target_release"),
                 "previous_release": source.get("previous_release"),
                 "previous_sha": source.get("previous_sha")}
        return await self._start(user, project, hosts, strategy, kind, source["ref"],
                                 source["sha"], extra, False)

    async def rollback(self, user: User, release_id: int, to: int | None) -> dict:
        """Switch the hosts of a release back to an earlier release still kept on them."""
        source, target, names = await self._rollback_plan(release_id, to)
        project = await self.projects.get(source["project"])
        hosts = await self.hosts.select(names, None)
        # The same batches and parallelism, but no pauses, fail limit or auto-rollback.
        strategy = dataclasses.replace(Strategy.parse(source["strategy"]), pause_after=[],
                                       max_fail=None, auto_rollback=False)
        extra = {"target_release": target["_id"], "rollback_of": release_id,
                 "previous_release": source["_id"], "previous_sha": source["sha"]}
        return await self._start(user, project, hosts, strategy, "rollback", target["ref"],
                                 target["sha"], extra, False)

    async def rollback_plan(self, release_id: int, to: int | None) -> dict:
        """What `rollback` would do, without doing it: for the confirmation people see."""
        _, target, names = await self._rollback_plan(release_id, to)
        return {"release": release_id, "hosts": names,
                "target": {"id": target["_id"], "ref": target["ref"], "sha": target["sha"]}}

    async def _rollback_plan(self, release_id: int,
                             to: int | None) -> tuple[dict, dict, list[str]]:
        source = await self._get_doc(release_id)
        if source["state"] in ACTIVE:
            raise Conflict(f"release {release_id} is still {source['state']}; cancel it first")
        # Only the hosts it switched: the others still run what they ran before it.
        names = [run["host"] async for run in self.store.host_runs.find(
            {"release_id": release_id}, {"host": 1, "state": 1, "stages": 1})
            if switched(run)]
        if not names:
            raise Invalid(f"release {release_id} switched no host; nothing to roll back")
        if to is None:
            target = await self.last_success(source["project"], source["environment"],
                                             before=release_id)
            if target is None:
                raise Invalid(f"no successful release before {release_id} to roll back to")
        else:
            target = await self._get_doc(to)
            if target["project"] != source["project"] or target["kind"] == "rollback":
                raise Invalid(f"release {to} is not a deploy of {source['project']}")
        return source, target, names

    async def _start(self, user: User, project: dict, hosts: list[dict], strategy: Strategy,
                     kind: str, ref: str, sha: str | None, extra: dict,
                     take_over: bool) -> dict:
        if self.stopping:
            raise Unavailable("Ferry is shutting down; start the release once it is back")
        environment = project["environment"]
        # Refused while locked before taking an id, so a 409 costs no release number (the
        # lock itself is still taken atomically below; only a race can skip a number).
        await self.locks.check(project["name"], environment, bool(take_over))
        release_id = await self.store.next_id("release")
        took_over = await self.locks.acquire(project["name"], environment, release_id,
                                             bool(take_over))
        names = [host["name"] for host in hosts]
        plan = strategy.plan(names)
        now = utcnow()
        release = {
            "_id": release_id, "project": project["name"], "environment": environment,
            "kind": kind, "ref": ref, "sha": sha, "state": "pending",
            "strategy": strategy.to_json(), "hosts": names, "batches": plan,
            "created_by": user.name, "created_at": now, "started_at": None,
            "finished_at": None, "reason": None, "local": {}, "owner": self.settings.instance_id,
            "lease_expires_at": now + timedelta(seconds=self.settings.lease_ttl_s),
            "took_over_lock_from": took_over, **extra}
        host_runs = {name: new_host_run(release_id, name, number)
                     for number, batch in enumerate(plan, 1) for name in batch}
        release["counts"] = {"pending": len(names)}
        try:
            await self.store.releases.insert_one(release)
            await self.store.host_runs.insert_many(list(host_runs.values()), ordered=False)
        except Exception:
            await self.locks.release(project["name"], environment, release_id)
            raise
        record = ReleaseRecord(self.store, self.events, release, host_runs,
                               self.settings)
        run = ReleaseRun(self.engine, record, project, hosts, strategy)
        task = asyncio.create_task(self._execute(run), name=f"release {release_id}")
        self.runs[release_id] = (run, task)
        return public_release(release)

    async def _execute(self, run: ReleaseRun) -> None:
        release = run.release
        try:
            await run.execute()
        finally:
            self.runs.pop(release["_id"], None)
            if release["state"] != "paused":     # kept for the restart that resumes it
                await self.locks.release(release["project"], release["environment"],
                                         release["_id"])
            await self.hosts.record_results(release, list(run.record.hosts.values()))

    # -- control --------------------------------------------------------------------

    def _run(self, release_id: int) -> ReleaseRun:
        entry = self.runs.get(release_id)
        if entry is None:
            raise Conflict(f"release {release_id} is not running on this Ferry instance")
        return entry[0]

    async def cancel(self, release_id: int, *, rollback: bool = False,
                     reason: str | None = None) -> dict:
        await self._get_doc(release_id)
        run = self._run(release_id)
        run.cancel(rollback=rollback, reason=reason)
        return public_release(run.release)

    async def promote(self, release_id: int) -> dict:
        doc = await self._get_doc(release_id)
        # A release running here is judged by its live state, which is ahead of the
        # stored one while a state change is being written.
        entry = self.runs.get(release_id)
        state = entry[0].release["state"] if entry else doc["state"]
        if state != "paused":
            raise Conflict(f"release {release_id} is {state}, not paused")
        run = self._run(release_id)
        run.promote()
        return public_release(run.release)

    # -- reading --------------------------------------------------------------------

    async def get(self, release_id: int) -> dict:
        """The release with every host's run (live from memory while it runs here), and
        `seq`: the event the snapshot is current to, for subscribing after it."""
        seq = await self.events.head(f"release:{release_id}")
        entry = self.runs.get(release_id)
        if entry is not None:
            # Memory changes before its event is published, so this snapshot already
            # holds everything up to `seq` (events after it re-apply harmlessly).
            record = entry[0].record
            release = dict(record.release, counts=record.counts())
            hosts = [public_host_run(run) for run in record.hosts.values()]
        else:
            release = await self._get_doc(release_id)
            hosts = [public_host_run(doc) async for doc in self.store.host_runs.find(
                {"release_id": release_id})]
        result = public_release(release)
        result["host_runs"] = sorted(hosts, key=lambda run: natural_key(run["host"]))
        result["seq"] = seq
        return result

    async def list(self, project: str | None = None, limit: int = 50) -> dict:
        """Newest first, with the `wall` topic's seq to follow them live from."""
        wall_seq = await self.events.head("wall")
        query: dict[str, Any] = {"project": project} if project else {}
        cursor = self.store.releases.find(query, {"hosts": 0, "batches": 0}).sort(
            "_id", DESCENDING).limit(max(1, min(limit, 500)))
        releases = []
        async for doc in cursor:
            entry = self.runs.get(doc["_id"])
            if entry is not None:
                doc.update(state=entry[0].release["state"], counts=entry[0].record.counts())
            releases.append(public_release(doc))
        return {"releases": releases, "wall_seq": wall_seq}

    async def host_log(self, release_id: int, host: str, after: int = 0,
                       limit: int = HOST_LOG_PAGE) -> dict:
        """A page of one host's log: lines numbered after `after`, at most `limit`."""
        await self._get_doc(release_id)
        limit = max(1, min(limit, HOST_LOG_PAGE))
        lines: list[dict] = []
        # Chunks that end at or before `after` are skipped by the query (`last_n`; older
        # chunks without it are filtered line by line), and read a few per round trip.
        query = {"release_id": release_id, "host": host,
                 "$or": [{"last_n": {"$gt": after}}, {"last_n": {"$exists": False}}]}
        async for chunk in self.store.host_logs.find(query).sort("seq", 1).batch_size(8):
            lines.extend(line for line in chunk["lines"] if line["n"] > after)
            if len(lines) > limit:
                break
        entry = self.runs.get(release_id)
        if entry is not None and len(lines) <= limit:
            seen = lines[-1]["n"] if lines else after
            lines.extend(line for line in entry[0].record.pending_log(host) if line["n"] > seen)
        page = lines[:limit]
        return {"release_id": release_id, "host": host, "lines": page,
                "next": page[-1]["n"] if page else after, "more": len(lines) > limit}

    async def last_success(self, project: str, environment: str,
                           before: int | None = None) -> dict | None:
        query: dict[str, Any] = {"project": project, "environment": environment,
                                 "state": "succeeded", "kind": {"$in": ["deploy", "retry"]}}
        if before is not None:
            query["_id"] = {"$lt": before}
        return await self.store.releases.find_one(query, sort=[("_id", DESCENDING)])

    async def find(self, release_id: int) -> dict:
        """The release alone (no host runs); NotFound when there is none."""
        return public_release(await self._get_doc(release_id))

    async def _get_doc(self, release_id: int) -> dict:
        if not 0 < release_id <= MAX_ID:
            raise NotFound(f"no release {release_id}")
        doc = await self.store.releases.find_one({"_id": release_id})
        if doc is None:
            raise NotFound(f"no release {release_id}")
        return doc

    # -- leases ---------------------------------------------------------------------

    async def _lease_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.lease_renew_s)
            try:
                await self.renew_leases()
                await self.recover()
            except Exception:
                log.exception("could not renew leases")

    async def renew_leases(self) -> None:
        await self.locks.renew(list(self.runs))

    # -- crash recovery -------------------------------------------------------------

    async def recover(self, at_start: bool = False) -> None:
        """Mark releases whose owner is gone as interrupted, keeping each host's last state.

        With the embedded database this process is the only one, so anything still active
        at start-up was left by a dead process; otherwise the owner's lease must expire (and
        always after start-up: a release being started here is in the database a moment
        before it is in `runs`, with a fresh lease)."""
        query: dict[str, Any] = {"state": {"$in": list(ACTIVE)},
                                 "_id": {"$nin": list(self.runs)}}
        if not (self.settings.exclusive_db and at_start):
            query["lease_expires_at"] = {"$lt": utcnow()}
        async for doc in self.store.releases.find(query, {"_id": 1, "project": 1,
                                                          "environment": 1, "state": 1,
                                                          "strategy.vote": 1}):
            if doc["state"] == "paused" and (doc.get("strategy") or {}).get("vote") and (
                    await self._resume(doc["_id"])):
                continue
            await interrupt(doc, self.store, self.locks, self.hosts, self.events)

    async def _resume(self, release_id: int) -> bool:
        """Take up a release its Ferry left paused for a vote: still paused, with its
        vote, here. False (then it is interrupted) when it cannot be."""
        now = utcnow()
        lease = now + timedelta(seconds=self.settings.lease_ttl_s)
        query: dict[str, Any] = {"_id": release_id, "state": "paused"}
        if not self.settings.exclusive_db:
            query["lease_expires_at"] = {"$lt": now}
        try:
            doc = await self.store.releases.find_one_and_update(query, {"$set": {
                "owner": self.settings.instance_id, "lease_expires_at": lease,
                "resumed_at": now}}, return_document=ReturnDocument.AFTER)
            if doc is None:
                return False
            held = await self.store.leases.find_one_and_update(
                {"_id": f"deploy:{doc['project']}:{doc['environment']}",
                 "release_id": release_id},
                {"$set": {"owner": self.settings.instance_id, "expires_at": lease}})
            if held is None:
                await self.locks.acquire(doc["project"], doc["environment"], release_id, False)
            project = await self.projects.get(doc["project"])
            hosts = await self.hosts.select(doc["hosts"], None)
            host_runs = {run["host"]: run async for run in self.store.host_runs.find(
                {"release_id": release_id})}
            strategy = Strategy.parse(doc["strategy"])
        except Exception:
            log.exception("release %s cannot be resumed", release_id)
            return False
        record = ReleaseRecord(self.store, self.events, doc, host_runs, self.settings)
        run = ReleaseRun(self.engine, record, project, hosts, strategy)
        run.resume_after = doc["paused_after_batch"]
        task = asyncio.create_task(self._execute(run), name=f"release {release_id}")
        self.runs[release_id] = (run, task)
        log.warning("release %s resumed, paused after batch %s", release_id,
                    run.resume_after)
        return True



def _required(body: dict, key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise Invalid(f"{key} is required")
    return value
