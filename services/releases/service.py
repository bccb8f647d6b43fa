"""ReleaseService: start, cancel, promote, retry and roll back releases; the deploy lock
and release ownership as leases in the database; crash recovery at start-up.

The service is the one object the rest of Ferry calls about releases. Reading them
(`get`, `list`, `host_log`, `find`, `last_success`) is delegated to reads.py, planning a
retry or a rollback to followups.py; the runs themselves are run.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pymongo import ReturnDocument

from services.errors import Conflict, Forbidden, Invalid, NotFound, Unavailable
from services.git.refs import validate_ref
from services.registry import validation as check
from services.releases.context import Engine
from services.releases.followups import FollowUp, plan_retry, plan_rollback
from services.releases.locks import ACTIVE, DeployLock
from services.releases.reads import (
    HOST_LOG_PAGE,
    ReleaseReads,
    parse_release_id,
    public_release,
)
from services.releases.records import ReleaseRecord, new_host_run
from services.releases.recovery import interrupt
from services.releases.run import ReleaseRun
from services.releases.strategies import Strategy
from services.store import utcnow
from services.team.auth import User

if TYPE_CHECKING:
    from services.events.bus import EventBus
    from services.registry.hosts import HostService
    from services.registry.projects import ProjectService
    from services.team.access import Access

# Read from path parts by the handlers, and how a release is shown: reads.py's.
__all__ = ["ReleaseService", "parse_release_id", "public_release"]

log = logging.getLogger("ferry.releases")


class ReleaseService:
    """Owns the releases running in this process and the leases that prove it."""

    def __init__(self, engine: Engine, events: EventBus, projects: ProjectService,
                 hosts: HostService, *, access: Access) -> None:
        self.engine = engine
        self.settings = engine.settings
        self.store = engine.store
        self.events = events
        self.projects = projects
        self.hosts = hosts
        self.access = access        # who sees a release's topic
        self.locks = DeployLock(self.store, self.settings)
        self.runs: dict[int, tuple[ReleaseRun, asyncio.Task]] = {}
        self.reads = ReleaseReads(self.store, events, self._live, self.settings.release_end_wait_s)
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
        """`release:<id>` exists for a user who sees the release's project."""
        try:
            release_id = parse_release_id(topic.split(":", 1)[1])
        except NotFound:
            return False
        return await self.access.may_see_release(user, release_id)

    # -- starting releases ----------------------------------------------------------

    async def create(self, user: User, body: dict, *, hold: dict | None = None,
                     more: dict | None = None) -> dict:
        """A deploy of `ref` of a project to hosts; 409 if the project is locked. With
        `hold` (its state and gate fields) the release is stored to start later (gates.py)
        and takes no lock; `more` is stored with it (a freeze override)."""
        take_over = check.boolean(body.get("take_over", False), "take_over")   # before git
        project = await self.projects.get(_required(body, "project"))
        ref = _required(body, "ref")
        try:
            validate_ref(ref)
        except ValueError as error:
            raise Invalid(str(error)) from None
        hosts = await self.hosts.select(body.get("hosts") or project.get("hosts"),
                                                 body.get("groups") or project.get("groups"))
        if not user.can("admin"):
            allowed_targets(project, hosts)
        strategy = Strategy.parse(body.get("strategy") or project.get("strategy"))
        previous = await self.last_success(project["name"], project["environment"])
        extra = {"previous_release": previous["_id"] if previous else None,
                 "previous_sha": previous["sha"] if previous else None, **(more or {})}
        if hold is not None:
            return await self._hold(user, project, hosts, strategy, ref, {**extra, **hold})
        # The SHA is resolved by the run, as its first step: a remote that stalls must not
        # hold this request (the release then fails with git's error as its reason).
        return await self._start(user, project, hosts, strategy, "deploy", ref, None, extra,
                                 take_over)

    async def _hold(self, user: User, project: dict, hosts: list[dict], strategy: Strategy,
                    ref: str, fields: dict) -> dict:
        """Store a release that waits (scheduled, awaiting approval): no lock, no host run."""
        if self.stopping:
            raise Unavailable("Ferry is shutting down; start the release once it is back")
        names = [host["name"] for host in hosts]
        release = {"_id": await self.store.next_id("release"), "project": project["name"],
                   "environment": project["environment"], "kind": "deploy", "ref": ref,
                   "sha": None, "strategy": strategy.to_json(), "hosts": names,
                   "batches": strategy.plan(names), "created_by": user.name,
                   "created_at": utcnow(), "started_at": None, "finished_at": None,
                   "reason": None, "local": {}, "owner": None,
                   "counts": {"pending": len(names)}, **fields}
        await self.store.releases.insert_one(release)
        return public_release(release)

    async def launch(self, held: dict, more: dict | None = None) -> dict:
        """Start a held release now (its gates are passed): Conflict when the project is
        locked or the release left its held state meanwhile."""
        project = await self.projects.get(held["project"])
        hosts = await self.hosts.select(held["hosts"], None)
        previous = await self.last_success(project["name"], project["environment"])
        extra = {"previous_release": previous["_id"] if previous else None,
                 "previous_sha": previous["sha"] if previous else None, **(more or {})}
        return await self._start(User(held["created_by"], "deployer"), project, hosts,
                                 Strategy.parse(held["strategy"]), held["kind"], held["ref"],
                                 held.get("sha"), extra, False, held=held)

    async def retry(self, user: User, release_id: int) -> dict:
        """Deploy the same commit again to the hosts of a release that did not succeed."""
        return await self._follow(user, await plan_retry(self.reads, release_id))

    async def rollback(self, user: User, release_id: int, to: int | None) -> dict:
        """Switch the hosts of a release back to an earlier release still kept on them."""
        return await self._follow(user, await plan_rollback(self.reads, release_id, to))

    async def rollback_plan(self, release_id: int, to: int | None) -> dict:
        """What `rollback` would do, without doing it: for the confirmation people see."""
        plan = await plan_rollback(self.reads, release_id, to)
        target = plan.target
        assert target is not None       # a rollback always has one
        return {"release": release_id, "hosts": plan.hosts,
                "target": {"id": target["_id"], "ref": target["ref"], "sha": target["sha"]}}

    async def _follow(self, user: User, plan: FollowUp) -> dict:
        """Start a retry or a rollback as planned by followups.py."""
        project = await self.projects.get(plan.source["project"])
        hosts = await self.hosts.select(plan.hosts, None)
        return await self._start(user, project, hosts, plan.strategy(), plan.kind, plan.ref,
                                 plan.sha, plan.extra, False)

    async def _start(self, user: User, project: dict, hosts: list[dict], strategy: Strategy,
                     kind: str, ref: str, sha: str | None, extra: dict,
                     take_over: bool, held: dict | None = None) -> dict:
        if self.stopping:
            raise Unavailable("Ferry is shutting down; start the release once it is back")
        environment = project["environment"]
        # Refused while locked before taking an id, so a 409 costs no release number (the
        # lock itself is still taken atomically below; only a race can skip a number).
        await self.locks.check(project["name"], environment, bool(take_over))
        release_id = held["_id"] if held else await self.store.next_id("release")
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
        if held:        # keeps who asked, when, and its approvals, schedule and override
            release = {**held, **release, "created_by": held["created_by"],
                       "created_at": held["created_at"]}
        host_runs = {name: new_host_run(release_id, name, number)
                     for number, batch in enumerate(plan, 1) for name in batch}
        release["counts"] = {"pending": len(names)}
        try:
            if not held:
                await self.store.releases.insert_one(release)
            elif await self.store.releases.find_one_and_replace(
                    {"_id": release_id, "state": held["state"]}, release) is None:
                raise Conflict(f"release {release_id} is no longer {held['state']}")
            await self.store.host_runs.insert_many(list(host_runs.values()), ordered=False)
        except Exception:
            await self.locks.release(project["name"], environment, release_id)
            raise
        record = ReleaseRecord(self.store, self.events, release, host_runs,
                               self.settings, stored=True)
        run = ReleaseRun(self.engine, record, project, hosts, strategy)
        task = asyncio.create_task(self._execute(run), name=f"release {release_id}")
        self.runs[release_id] = (run, task)
        return public_release(release)

    async def _execute(self, run: ReleaseRun) -> None:
        release = run.release
        try:
            await run.execute()
        finally:
            try:
                if release["state"] != "paused":     # kept for the restart that resumes it
                    await self.locks.release(release["project"], release["environment"],
                                             release["_id"])
                await self.hosts.record_results(release, list(run.record.hosts.values()))
            finally:
                # Only now is the end everywhere (stored, published, lock free): a read
                # that saw the final state in memory waited for this (reads.py).
                self.runs.pop(release["_id"], None)
                run.ended.set()

    # -- control --------------------------------------------------------------------

    def _live(self, release_id: int) -> ReleaseRun | None:
        """The run of a release in this process, or None when it does not run here."""
        entry = self.runs.get(release_id)
        return entry[0] if entry else None

    def _run(self, release_id: int) -> ReleaseRun:
        entry = self.runs.get(release_id)
        if entry is None:
            raise Conflict(f"release {release_id} is not running on this Ferry instance")
        return entry[0]

    async def cancel(self, release_id: int, *, rollback: bool = False,
                     reason: str | None = None) -> dict:
        await self.reads.document(release_id)
        run = self._run(release_id)
        run.cancel(rollback=rollback, reason=reason)
        return public_release(run.release)

    async def promote(self, release_id: int) -> dict:
        doc = await self.reads.document(release_id)
        # A release running here is judged by its live state: the run waits for a
        # promote only once memory says paused (after the pause is stored).
        entry = self.runs.get(release_id)
        state = entry[0].release["state"] if entry else doc["state"]
        if state != "paused":
            raise Conflict(f"release {release_id} is {state}, not paused")
        run = self._run(release_id)
        run.promote()
        return public_release(run.release)

    # -- reading (reads.py) ------------------------------------------------------------

    async def get(self, release_id: int, wait: float = 0.0) -> dict:
        """The release with every host's run and the `seq` it is current to; `wait` > 0:
        first wait, at most that long, until it ends or pauses."""
        return await self.reads.get(release_id, wait)

    async def list(self, project: str | None = None, limit: int = 50,
                   among: set[str] | None = None) -> dict:
        """Newest first, with the `wall` topic's seq; only projects `among` when given."""
        return await self.reads.list(project, limit, among)

    async def host_log(self, release_id: int, host: str, after: int = 0,
                       limit: int = HOST_LOG_PAGE) -> dict:
        """A page of one host's log: lines numbered after `after`, at most `limit`."""
        return await self.reads.host_log(release_id, host, after, limit)

    async def last_success(self, project: str, environment: str,
                           before: int | None = None) -> dict | None:
        """The newest successful deploy (or retry) of the project, before `before`."""
        return await self.reads.last_success(project, environment, before)

    async def find(self, release_id: int) -> dict:
        """The release alone (no host runs); NotFound when there is none."""
        return await self.reads.find(release_id)

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
        record = ReleaseRecord(self.store, self.events, doc, host_runs, self.settings,
                               stored=True)
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


def allowed_targets(project: dict, hosts: list[dict]) -> None:
    """Hosts are admin-managed: anyone else deploys only to the hosts the project's settings
    name or that are in its groups (Forbidden names the others)."""
    names, groups = set(project.get("hosts") or []), set(project.get("groups") or [])
    outside = [host["name"] for host in hosts
               if host["name"] not in names and not groups & set(host.get("groups") or [])]
    if outside:
        shown = ", ".join(outside[:10]) + (f" and {len(outside) - 10} more"
                                           if len(outside) > 10 else "")
        raise Forbidden(f"project {project['name']} may not deploy to {shown}: only an admin "
                        "deploys outside the project's hosts and groups")
