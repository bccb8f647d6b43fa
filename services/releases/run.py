"""ReleaseRun: one release in progress — batches, parallelism, pauses, max_fail, cancel,
auto-rollback — driving a HostPipeline per host and recording everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time

from pymongo.errors import PyMongoError

from services.build.artifacts import Artifact
from services.git.mirrors import GitError
from services.releases.context import Engine, HostContext, LocalContext, ReleaseFacts
from services.releases.local import LOCAL_STAGES, LocalPipeline
from services.releases.pipeline import HostPipeline
from services.releases.records import ReleaseRecord
from services.releases.stages import StageFailed
from services.releases.strategies import Strategy
from services.store import describe_db_error

log = logging.getLogger("ferry.release")
PREVIOUS = re.compile(r"releases/(\d+)")     # whole string: fullmatch only


class ReleaseRun:
    """Runs in this process while the release is active; the record is its memory."""

    def __init__(self, engine: Engine, record: ReleaseRecord, project: dict,
                 hosts: list[dict], strategy: Strategy) -> None:
        self.engine = engine
        self.record = record
        self.release = record.release
        self.project = project
        self.hosts = {host["name"]: host for host in hosts}
        self.strategy = strategy
        self.keep_releases = project.get("keep_releases") or engine.settings.default_keep_releases
        self.cancelled = asyncio.Event()
        self.stopping = asyncio.Event()
        self.promoted = asyncio.Event()
        self.ended = asyncio.Event()     # set by the service once the end is stored everywhere
        self.cancel_reason: str | None = None     # set by cancel(); None: "by a user"
        self.rollback_on_cancel = False            # a failed vote: switch done hosts back
        self.fail_limit = self.strategy.fail_limit(len(hosts))
        self.failed = 0
        self.max_fail_hit = False
        self.host_tasks: dict[str, asyncio.Task] = {}
        self.build_task: asyncio.Task | None = None
        # Set when a release paused for a vote is taken up again after a restart: the
        # batches up to it are done; it waits (still paused) before the next one.
        self.resume_after: int | None = None

    # -- what the pipelines see ---------------------------------------------------------

    def facts(self) -> ReleaseFacts:
        """The release's facts, once its commit is resolved."""
        return ReleaseFacts.of(self.release, self.project, self.keep_releases)

    def host_context(self) -> HostContext:
        return HostContext(self.engine.settings, self.engine.ssh, self.facts(), self.record)

    def local_context(self) -> LocalContext:
        e = self.engine
        return LocalContext(e.settings, e.git, e.artifacts, e.executor, self.project,
                            self.facts(), self.record, self.artifact_origin)

    async def artifact_origin(self, sha256: str) -> int | None:
        """The latest earlier release of this project that built the artifact `sha256`
        (or, when that record is gone, the first one that shipped it). Only words for the
        page: when the database cannot say, the release goes on without them."""
        releases = self.engine.store.releases
        query = {"project": self.release["project"], "_id": {"$lt": self.release["_id"]},
                 "artifact.sha256": sha256}
        try:
            built = await releases.find_one({**query, "artifact.cached": False},
                                            sort=[("_id", -1)], projection={"_id": 1})
            if built is None:
                built = await releases.find_one(query, sort=[("_id", 1)],
                                                projection={"_id": 1})
        except PyMongoError as error:
            log.warning("release %s: where artifact %s came from is unknown: %s",
                        self.release["_id"], sha256[:12], describe_db_error(error))
            return None
        return built["_id"] if built else None

    # -- control from the API -------------------------------------------------------

    def cancel(self, *, rollback: bool = False, reason: str | None = None) -> None:
        """Stop; `rollback` (a failed go/no-go vote) also switches back, with
        auto_rollback, the hosts already done."""
        if not self.cancelled.is_set():
            self.rollback_on_cancel, self.cancel_reason = rollback, reason
        self.cancelled.set()
        if self.build_task is not None:
            self.build_task.cancel()
        for task in self.host_tasks.values():
            task.cancel()

    def promote(self) -> None:
        self.promoted.set()

    def should_stop(self) -> bool:
        return self.cancelled.is_set() or self.stopping.is_set() or self.max_fail_hit

    # -- the run --------------------------------------------------------------------

    async def execute(self) -> None:
        self.record.start()
        try:
            if self.resume_after is None:           # a resumed release stays paused
                await self.record.set_state("running")
            artifact = None
            if self.release["kind"] == "rollback":
                for stage in LOCAL_STAGES:
                    self.record.local_stage(stage, "skipped", duration_ms=0,
                                            reason="rollback: nothing to build")
            elif self.release["sha"] is not None or await self.resolve():
                artifact = await self.build()
            if artifact is not None or self.release["kind"] == "rollback":
                await self.schedule(artifact)
            await self.finish()
        except asyncio.CancelledError:
            # Hosts never started stay pending (a retry deploys them); those cut off are
            # interrupted, never failed: Ferry stopping is not the host's fault.
            self.mark_unfinished("interrupted", "Ferry stopped before this host finished",
                                 states=("running",))
            await self.record.set_state("interrupted", reason="Ferry stopped during the release")
            raise
        except Exception as error:
            log.exception("release %s crashed", self.release["_id"])
            self.mark_unfinished("failed", f"internal error: {error!r}")
            await self.record.set_state("failed", reason=f"internal error: {error!r}")
        finally:
            await self.record.close()

    async def resolve(self) -> bool:
        """Fetch the mirror and resolve the ref to one commit SHA, used from then on.

        The release's first step rather than part of starting it, so that starting a
        release never waits for a remote. False (and the reason recorded) if git fails."""
        git = self.engine.git
        started = time.monotonic()
        try:
            await git.sync(self.project)
            sha = await git.resolve(self.project, self.release["ref"])
        except GitError as error:
            reason = f"git: {error}"
            self.record.local_stage("checkout", "failed", reason=reason,
                                    duration_ms=int((time.monotonic() - started) * 1000))
            self.mark_unfinished("skipped", f"not deployed: {reason}")
            self.release["reason"] = reason
            return False
        self.record.log("_local", "checkout", f"{self.release['ref']} is {sha}")
        await self.record.set_state("running", sha=sha)
        return True

    async def build(self) -> Artifact | None:
        self.build_task = asyncio.create_task(LocalPipeline(self.local_context()).build(),
                                              name="build")
        try:
            artifact = await self.build_task
        except asyncio.CancelledError:
            if not self.cancelled.is_set() or not self.build_task.cancelled():
                raise
            return None
        except StageFailed as error:
            self.mark_unfinished("skipped", f"not deployed: {error}")
            self.release["reason"] = str(error)
            return None
        self.release["artifact"] = {"sha256": artifact.sha256, "size": artifact.size,
                                    "cached": artifact.cached}
        await self.engine.store.releases.update_one(
            {"_id": self.release["_id"]}, {"$set": {"artifact": self.release["artifact"]}})
        return artifact

    async def schedule(self, artifact: Artifact | None) -> None:
        batches = self.release["batches"]
        gate = asyncio.Semaphore(self.strategy.parallel)
        if self.resume_after is not None:
            await self.pause(self.resume_after)
        for number, batch in enumerate(batches, 1):
            if number <= (self.resume_after or 0):
                continue
            if self.should_stop():
                return
            self.record.emit("batch", {"batch": number, "of": len(batches), "hosts": len(batch)})
            tasks = [asyncio.create_task(self.run_host(name, artifact, gate), name=name)
                     for name in batch]
            self.host_tasks = {task.get_name(): task for task in tasks}
            await self.gather_hosts(tasks, "deploy")
            self.host_tasks = {}
            if number in self.strategy.pause_after and number < len(batches):
                await self.pause(number)

    async def pause(self, batch: int) -> None:
        if self.should_stop():
            return
        if batch != self.resume_after:   # a resumed pause keeps a promote sent meanwhile
            self.promoted.clear()
        await self.record.set_state("paused", paused_after_batch=batch)
        waiters = [asyncio.create_task(event.wait())
                   for event in (self.promoted, self.cancelled, self.stopping)]
        try:
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()
        if not self.should_stop():
            await self.record.set_state("running", paused_after_batch=None)

    async def run_host(self, name: str, artifact: Artifact | None,
                       gate: asyncio.Semaphore) -> None:
        async with gate:
            await self.record.room()
            if self.should_stop():
                return
            pipeline = HostPipeline(self.host_context(), self.hosts[name])
            self.record.host_state(name, "running")
            try:
                if artifact is None:
                    await pipeline.switch_to(self.release["target_release"])
                else:
                    await pipeline.deploy(artifact)
                self.record.host_state(name, "ok")
            except StageFailed as error:
                self.record.host_state(name, "failed", reason=str(error))
                self.count_failure()
            except asyncio.CancelledError:
                state = "cancelled" if self.cancelled.is_set() else "interrupted"
                self.record.host_state(name, state, reason=f"{state} during "
                                       f"{self.record.hosts[name]['stage']}")
                if not self.cancelled.is_set():
                    raise
            finally:
                await pipeline.close()

    def count_failure(self) -> None:
        self.failed += 1
        if self.fail_limit is not None and self.failed > self.fail_limit and not self.max_fail_hit:
            self.max_fail_hit = True
            self.record.emit("release", {"state": self.release["state"], "max_fail_exceeded":
                                         True, "failed": self.failed, "limit": self.fail_limit})

    async def finish(self) -> None:
        # Whoever sees the release end can read every host's log from the database.
        await self.record.flush()
        counts = self.record.counts()
        if self.stopping.is_set() and not self.cancelled.is_set() and self.strategy.vote and (
                self.release["state"] == "paused"):
            return          # paused for a vote: it stays paused, and the next start resumes it
        if self.stopping.is_set() and not self.cancelled.is_set():
            await self.record.set_state("interrupted", reason="Ferry stopped during the release")
        elif self.cancelled.is_set():
            self.mark_unfinished("skipped", "release cancelled")
            reason = self.cancel_reason or "cancelled by a user"
            if self.rollback_on_cancel and self.strategy.auto_rollback:
                await self.auto_rollback()
                reason += "; hosts already done were switched back"
            await self.record.set_state("cancelled", reason=reason)
        elif self.max_fail_hit:
            self.mark_unfinished("skipped", f"max_fail exceeded ({self.failed} failed, "
                                            f"{self.fail_limit} allowed)")
            if self.strategy.auto_rollback:
                await self.auto_rollback()
                await self.record.set_state("rolled_back", reason="max_fail exceeded; "
                                            "hosts already done were switched back")
            else:
                await self.record.set_state("failed", reason="max_fail exceeded")
        elif self.release.get("reason") and not counts["ok"]:
            await self.record.set_state("failed", reason=self.release["reason"])
        elif counts["failed"]:
            await self.record.set_state("failed", reason=f"{counts['failed']} host(s) failed")
        else:
            await self.record.set_state("succeeded")

    async def auto_rollback(self) -> None:
        """Switch hosts this release already completed back to what they ran before."""
        done = [name for name, run in self.record.hosts.items() if run["state"] == "ok"]
        gate = asyncio.Semaphore(self.strategy.parallel)

        async def back(name: str) -> None:
            async with gate:
                match = PREVIOUS.fullmatch(self.record.hosts[name].get("previous") or "")
                if not match:
                    self.record.log(name, "release", "nothing to roll back to (first release)")
                    return
                pipeline = HostPipeline(self.host_context(), self.hosts[name])
                try:
                    await pipeline.switch_and_check(int(match.group(1)))
                    self.record.host_state(name, "rolled_back",
                                           reason=f"switched back to release {match.group(1)}")
                except StageFailed as error:
                    self.record.host_state(name, "failed", reason=f"rollback: {error}")
                finally:
                    await pipeline.close()

        await self.gather_hosts([back(name) for name in done], "auto-rollback")

    async def gather_hosts(self, host_work: list, what: str) -> None:
        """Wait for every host; a host's unexpected error is logged with the release, never
        dropped (expected failures are already recorded on the host by its pipeline)."""
        results = await asyncio.gather(*host_work, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("release %s: unexpected error during %s", self.release["_id"], what,
                          exc_info=result)

    def mark_unfinished(self, state: str, reason: str,
                        states: tuple[str, ...] = ("pending", "running")) -> None:
        for name, run in self.record.hosts.items():
            if run["state"] in states:
                self.record.host_state(name, state, reason=reason)

    async def stop(self, grace_s: float, task: asyncio.Task) -> None:
        """Graceful stop: no new hosts; running ones get `grace_s` to reach a safe point."""
        self.stopping.set()
        with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(task), grace_s)
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
