"""The pipeline: local stages (hooks, checkout, package) and each host's stages.

Stage order follows the design's table. A host's `current` moves only by the atomic rename
in `release`, so a failure anywhere leaves the host on its old release or its new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

from services.build.artifacts import Artifact
from services.build.localrun import LocalHookError, run_local_hook
from services.git.mirrors import GitError
from services.releases import remote
from services.ssh.client import CommandResult, HostSession, SshError

if TYPE_CHECKING:
    from services.releases.run import ReleaseRun

LOCAL_STAGES = ("before_checkout", "checkout", "after_checkout", "package")
HOST_STAGES = ("upload", "extract", "before_release", "release", "after_release", "verify",
               "prune")


class StageFailed(Exception):
    """A stage failed on one host (or locally); str(error) is the reason shown."""


class LocalPipeline:
    """Runs the local stages once per release and returns the artifact to ship."""

    def __init__(self, run: ReleaseRun) -> None:
        self.run = run
        self.services = run.services
        self.record = run.record
        self.project = run.project

    async def build(self) -> Artifact:
        sha = self.run.release["sha"]
        cached = self.services.artifacts.cached(self.project, sha)
        work = self.services.settings.work_dir / f"release-{self.run.release['_id']}"
        try:
            async with self.stage("before_checkout", "before_checkout"):
                await self.hook("before_checkout", work)
            if cached is not None:
                for stage in ("checkout", "after_checkout"):
                    self.record.local_stage(stage, "skipped", duration_ms=0,
                                            reason="artifact cached for this commit and build")
                self.record.local_stage("package", "skipped", duration_ms=0,
                                        reason=f"cached {cached.sha256[:12]}")
                return cached
            tree = work / "tree"
            async with self.stage("checkout"):
                await self.checkout(sha, tree)
            async with self.stage("after_checkout", "after_checkout"):
                await self.hook("after_checkout", tree)
            async with self.stage("package"):
                artifact = await self.services.artifacts.package(self.project, sha, tree)
                self.record.log("_local", "package",
                                f"artifact {artifact.sha256} ({artifact.size} bytes)")
            return artifact
        finally:
            await asyncio.get_running_loop().run_in_executor(
                self.services.executor, shutil.rmtree, work, True)

    async def checkout(self, sha: str, tree: Path) -> None:
        """Export the commit from the mirror, which creating the release just fetched;
        fetch again only when the commit is not there (e.g. a mirror removed since)."""
        git = self.services.git
        try:
            try:
                await git.export_tree(self.project, sha, tree)
            except GitError:
                await asyncio.to_thread(shutil.rmtree, tree, True)
                await git.sync(self.project)
                await git.export_tree(self.project, sha, tree)
        except GitError as error:
            raise StageFailed(f"checkout: {error}") from None
        self.record.log("_local", "checkout", f"exported {sha}")

    async def hook(self, name: str, cwd: Path) -> None:
        script = (self.project.get("hooks") or {}).get(name)
        if not script:
            raise _Skip("no hook")
        await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
        settings = self.services.settings
        try:
            await run_local_hook(
                script, cwd, self.run.hook_env(None, str(cwd), name),
                timeout_s=settings.local_hook_timeout_s, line_max=settings.ssh_line_max_bytes,
                output_max=settings.ssh_step_output_max_bytes,
                on_line=lambda line: self.record.log("_local", name, line))
        except LocalHookError as error:
            raise StageFailed(f"{name}: {error}") from None

    @contextlib.asynccontextmanager
    async def stage(self, stage: str, hook: str | None = None) -> AsyncIterator[None]:
        self.record.local_stage(stage, "running")
        started = time.monotonic()
        try:
            yield
        except _Skip as skip:
            self.record.local_stage(stage, "skipped", duration_ms=0, reason=str(skip))
            return
        except StageFailed as error:
            self.record.local_stage(stage, "failed", duration_ms=_ms(started), reason=str(error))
            raise
        except asyncio.CancelledError:
            self.record.local_stage(stage, "cancelled", duration_ms=_ms(started),
                                    reason="cancelled")
            raise
        except Exception as error:
            self.record.local_stage(stage, "failed", duration_ms=_ms(started), reason=str(error))
            raise StageFailed(f"{stage}: {error}") from error
        self.record.local_stage(stage, "ok", duration_ms=_ms(started))


class _Skip(Exception):
    """Raised inside a stage to mark it skipped (no hook configured, nothing to do)."""


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


class HostPipeline:
    """Runs one host's stages over one SSH connection, recording each stage."""

    def __init__(self, run: ReleaseRun, host: dict) -> None:
        self.run = run
        self.host = host
        self.name = host["name"]
        self.record = run.record
        self.settings = run.services.settings
        self.deploy_path = run.project["deploy_path"]
        self.release_id = run.release["_id"]
        self.session: HostSession | None = None

    async def deploy(self, artifact: Artifact) -> None:
        """Upload, extract, switch, hooks, verify, prune. Raises StageFailed."""
        async with self.stage("upload"):
            await self.connect()
            await self.upload(artifact)
        async with self.stage("extract"):
            await self.exec("extract", remote.extract(
                self.deploy_path, self.release_id, artifact.sha256, self.metadata()))
        new_dir = remote.release_dir(self.deploy_path, self.release_id)
        async with self.stage("before_release"):
            await self.hook("before_release", new_dir)
        await self.switch_and_check(self.release_id)
        async with self.stage("prune"):
            await self.exec("prune", remote.prune(self.deploy_path, self.run.keep_releases))

    async def switch_to(self, target_id: int) -> None:
        """Rollback: switch to a release still kept on the host, then hooks and verify."""
        for stage in ("upload", "extract", "before_release", "prune"):
            self.record.stage_end(self.name, stage, "skipped", 0, "rollback: no upload")
        await self.switch_and_check(target_id)

    async def switch_and_check(self, target_id: int) -> None:
        async with self.stage("release"):
            await self.connect()
            lines: list[str] = []
            result = await self.exec("release", remote.switch(self.deploy_path, target_id),
                                     collect=lines, check=False, quiet=True)
            if result.exit_status != 0:
                for line in lines:
                    self.record.log(self.name, "release", line)
            if result.exit_status == remote.MISSING_RELEASE:
                raise StageFailed(f"release: release {target_id} is no longer kept on this host")
            if result.exit_status != 0:
                raise StageFailed(f"release: switch failed (status {result.exit_status})")
            previous = next((line.split("=", 1)[1] for line in lines
                             if line.startswith("previous=")), "")
            self.record.hosts[self.name]["previous"] = previous or None
            self.record.log(self.name, "release", f"current -> releases/{target_id} "
                                                  f"(was {previous or 'nothing'})")
        current = f"{self.deploy_path}/current"
        async with self.stage("after_release"):
            await self.hook("after_release", current)
        async with self.stage("verify"):
            await self.verify(current)

    async def connect(self) -> None:
        if self.session is None:
            try:
                self.session = await self.run.services.ssh.connect(self.host)
            except SshError as error:
                raise StageFailed(error.reason) from None

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            with contextlib.suppress(Exception):
                await session.close()

    async def upload(self, artifact: Artifact) -> None:
        lines: list[str] = []
        await self.exec("upload", remote.check_artifact(self.deploy_path, artifact.sha256),
                        collect=lines, quiet=True)
        if "present" in lines:
            self.record.log(self.name, "upload", f"artifact {artifact.sha256[:12]} already "
                                                 "on host; upload skipped")
            self.record.hosts[self.name]["upload_skipped"] = True
            return
        try:
            result = await self.session.upload(
                remote.receive_artifact(self.deploy_path, artifact.sha256), artifact.path,
                timeout=self.settings.ssh_command_timeout_s)
        except SshError as error:
            raise StageFailed(f"upload: {error.reason}") from None
        if result.exit_status != 0:
            raise StageFailed(f"upload: checksum or write failed (status {result.exit_status})")
        self.record.log(self.name, "upload", f"uploaded {artifact.size} bytes, sha256 verified")

    async def hook(self, name: str, cwd: str) -> None:
        script = (self.run.project.get("hooks") or {}).get(name)
        if not script:
            raise _Skip("no hook")
        env = self.run.hook_env(self.host, cwd, name)
        await self.exec(name, remote.hook(script, cwd, env),
                        timeout_s=self.settings.hook_timeout_s)

    async def verify(self, cwd: str) -> None:
        check = self.run.project.get("health_check")
        if not check:
            raise _Skip("no health check")
        if check.get("command"):
            command = remote.hook(check["command"], cwd,
                                  self.run.hook_env(self.host, cwd, "verify"))
        else:
            command = remote.health_url(check["url"], check["timeout_s"])
        retries = check.get("retries", self.settings.verify_retries)
        for attempt in range(1, retries + 1):
            result = await self.exec("verify", command, check=False,
                                     timeout_s=check.get("timeout_s", 10) + 5)
            if result.exit_status == 0:
                return
            self.record.log(self.name, "verify", f"health check attempt {attempt}/{retries} "
                                                 f"failed (status {result.exit_status})")
            if attempt < retries:
                await asyncio.sleep(check.get("interval_s", self.settings.verify_interval_s))
        raise StageFailed(f"verify: health check failed {retries} times")

    async def exec(self, stage: str, command: str, *, check: bool = True,
                   timeout_s: float | None = None, collect: list[str] | None = None,
                   quiet: bool = False) -> CommandResult:
        """Run one command on the host; its output goes to the host's log unless quiet."""
        def on_line(line: str) -> None:
            if collect is not None:
                collect.append(line)
            if not quiet:
                self.record.log(self.name, stage, line)

        try:
            result = await self.session.run(
                command, timeout=timeout_s or self.settings.ssh_command_timeout_s, on_line=on_line)
        except SshError as error:
            raise StageFailed(f"{stage}: {error.reason}") from None
        if check and result.exit_status != 0:
            status = "no exit status" if result.exit_status is None else (
                f"exited with status {result.exit_status}")
            raise StageFailed(f"{stage}: {status}")
        return result

    def metadata(self) -> str:
        release = self.run.release
        return (f"release={release['_id']} project={release['project']} "
                f"ref={release['ref']} sha={release['sha']}")

    @contextlib.asynccontextmanager
    async def stage(self, stage: str) -> AsyncIterator[None]:
        self.record.stage_start(self.name, stage)
        started = time.monotonic()
        try:
            yield
        except _Skip as skip:
            self.record.stage_end(self.name, stage, "skipped", _ms(started), str(skip))
            return
        except StageFailed as error:
            self.record.stage_end(self.name, stage, "failed", _ms(started), str(error))
            raise
        except asyncio.CancelledError:
            self.record.stage_end(self.name, stage, "cancelled", _ms(started), "cancelled")
            raise
        except Exception as error:
            self.record.stage_end(self.name, stage, "failed", _ms(started), repr(error))
            raise StageFailed(f"{stage}: internal error {error!r}") from error
        self.record.stage_end(self.name, stage, "ok", _ms(started))
