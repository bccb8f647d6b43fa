"""ReleaseRun: one release in progress — batches, parallelism, pauses, max_fail, cancel,
auto-rollback — driving a HostPipeline per host and recording everything."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from typing import TYPE_CHECKING

from services.build.artifacts import Artifact
from services.releases.pipeline import LOCAL_STAGES, HostPipeline, LocalPipeline, StageFailed
from services.releases.records import ReleaseRecord
from services.releases.strategies import Strategy

if TYPE_CHECKING:
    from services import Services

log = logging.getLogger("ferry.release")
PREVIOUS = re.compile(r"^releases/(\d+)$")


class ReleaseRun:
    """Runs in this process while the release is active; the record is its memory."""

    def __init__(self, services: Services, record: ReleaseRecord, project: dict,
                 hosts: list[dict]) -> None:
        self.services = services
        self.record = record
        self.release = record.release
        self.project = project
        self.hosts = {host["name"]: host for host in hosts}
        self.strategy = Strategy.parse(self.release["strategy"])
        self.keep_releases = project.get("keep_releases") or services.settings.default_keep_releases
        self.cancelled = asyncio.Event()
        self.stopping = asyncio.Event()
        self.promoted = asyncio.Event()
        self.fail_limit = self.strategy.fail_limit(len(hosts))
        self.failed = 0
        self.max_fail_hit = False
        self.host_tasks: dict[str, asyncio.Task] = {}
        self.build_task: asyncio.Task | None = None

    # -- values for hooks -------------------------------------------------------------

    def hook_env(self, host: dict | None, cwd: str, stage: str) -> dict[str, str]:
        """Ferry's values for a hook, as environment variables (never script text)."""
        release = self.release
        env = dict(host.get("variables") or {}) if host else {}
        env.update({
            "FERRY_RELEASE_ID": str(release["_id"]), "FERRY_PROJECT": release["project"],
            "FERRY_ENVIRONMENT": release["environment"], "FERRY_REF": release["ref"],
            "FERRY_SHA": release["sha"], "FERRY_KIND": release["kind"],
            "FERRY_DEPLOY_PATH": self.project["deploy_path"],
            "FERRY_RELEASE_PATH": f"{self.project['deploy_path']}/releases/{release['_id']}",
            "FERRY_STAGE": stage, "FERRY_USER": release["created_by"], "FERRY_CWD": cwd})
        if host:
            env["FERRY_HOST"] = host["name"]
        return env

    # -- control from the API -------------------------------------------------------

    def cancel(self) -> None:
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
            await self.record.set_state("running")
            artifact = None
            if self.release["kind"] == "rollback":
                for stage in LOCAL_STAGES:
                    self.record.local_stage(stage, "skipped", duration_ms=0,
                                            reason="rollback: nothing to build")
            else:
                artifact = await self.build()
            if artifact is not None or self.release["kind"] == "rollback":
                await self.schedule(artifact)
            await self.finish()
        except asyncio.CancelledError:
            self.mark_unfinished("interrupted", "Ferry stopped before this host finished")
            await self.record.set_state("interrupted", reason="Ferry stopped during the release")
            raise
        except Exception as error:
            log.exception("release %s crashed", self.release["_id"])
            self.mark_unfinished("failed", f"internal error: {error!r}")
            await self.record.set_state("failed", reason=f"internal error: {error!r}")
        finally:
            await self.record.close()

    async def build(self) -> Artifact | None:
        self.build_task = asyncio.create_task(LocalPipeline(self).build(), name="build")
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
        await self.services.store.releases.update_one(
            {"_id": self.release["_id"]}, {"$set": {"artifact": self.release["artifact"]}})
        return artifact

    async def schedule(self, artifact: Artifact | None) -> None:
        batches = self.release["batches"]
        gate = asyncio.Semaphore(self.strategy.parallel)
        for number, batch in enumerate(batches, 1):
            if self.should_stop():
                return
            self.record.emit("batch", {"batch": number, "of": len(batches), "hosts": len(batch)})
            tasks = [asyncio.create_task(self.run_host(name, artifact, gate), name=name)
                     for name in batch]
            self.host_tasks = {task.get_name(): task for task in tasks}
            await asyncio.gather(*tasks, return_exceptions=True)
            self.host_tasks = {}
            if number in self.strategy.pause_after and number < len(batches):
                await self.pause(number)

    async def pause(self, batch: int) -> None:
        if self.should_stop():
            return
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
            if self.should_stop():
                return
            pipeline = HostPipeline(self, self.hosts[name])
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
        if self.stopping.is_set() and not self.cancelled.is_set():
            await self.record.set_state("interrupted", reason="Ferry stopped during the release")
        elif self.cancelled.is_set():
            self.mark_unfinished("skipped", "release cancelled")
            await self.record.set_state("cancelled", reason="cancelled by a user")
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
                match = PREVIOUS.match(self.record.hosts[name].get("previous") or "")
                if not match:
                    self.record.log(name, "release", "nothing to roll back to (first release)")
                    return
                pipeline = HostPipeline(self, self.hosts[name])
                try:
                    await pipeline.switch_and_check(int(match.group(1)))
                    self.record.host_state(name, "rolled_back",
                                           reason=f"switched back to release {match.group(1)}")
                except StageFailed as error:
                    self.record.host_state(name, "failed", reason=f"rollback: {error}")
                finally:
                    await pipeline.close()

        await asyncio.gather(*(back(name) for name in done), return_exceptions=True)

    def mark_unfinished(self, state: str, reason: str) -> None:
        for name, run in self.record.hosts.items():
            if run["state"] in ("pending", "running"):
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
