"""The local stages, run once per release on the Ferry server: the before_checkout hook,
checkout (export of the resolved commit), the after_checkout hook (the build) and package.
Their result is the artifact every host receives."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

from services.build.artifacts import Artifact
from services.build.localrun import LocalHookError, run_local_hook
from services.git.mirrors import GitError
from services.releases.context import LocalContext
from services.releases.stages import StageFailed, StageSkipped, elapsed_ms

LOCAL_STAGES = ("before_checkout", "checkout", "after_checkout", "package")


class LocalPipeline:
    """Runs the local stages once per release and returns the artifact to ship."""

    def __init__(self, ctx: LocalContext) -> None:
        self.ctx = ctx
        self.facts = ctx.facts
        self.sink = ctx.sink
        self.project = ctx.project

    async def build(self) -> Artifact:
        sha = self.facts.sha
        cached = self.ctx.artifacts.cached(self.project, sha)
        work = self.ctx.settings.work_dir / f"release-{self.facts.id}"
        try:
            async with self.stage("before_checkout", "before_checkout"):
                await self.hook("before_checkout", work)
            if cached is not None:
                await self.reuse(cached)
                return cached
            tree = work / "tree"
            async with self.stage("checkout"):
                await self.checkout(sha, tree)
            async with self.stage("after_checkout", "after_checkout"):
                await self.hook("after_checkout", tree)
            async with self.stage("package"):
                artifact = await self.ctx.artifacts.package(self.project, sha, tree)
                self.sink.log("_local", "package",
                              f"artifact {artifact.sha256} ({artifact.size} bytes)")
            return artifact
        finally:
            await asyncio.get_running_loop().run_in_executor(
                self.ctx.executor, shutil.rmtree, work, True)

    async def reuse(self, cached: Artifact) -> None:
        """Skip the stages that would rebuild `cached`, saying on each stage and in the
        build log which release built it, so nobody wonders why nothing ran."""
        origin = None
        if self.ctx.artifact_origin is not None:
            origin = await self.ctx.artifact_origin(cached.sha256)
        reason = (f"artifact cached from release #{origin}" if origin is not None
                  else "artifact cached for this commit and build")
        for stage in ("checkout", "after_checkout", "package"):
            self.sink.local_stage(stage, "skipped", duration_ms=0, reason=reason,
                                  cached_from=origin)
            self.sink.log("_local", stage, f"skipped — {reason} (sha256 {cached.sha256[:12]})")

    async def checkout(self, sha: str, tree: Path) -> None:
        """Export the commit from the mirror, which creating the release just fetched;
        fetch again only when the commit is not there (e.g. a mirror removed since)."""
        git = self.ctx.git
        try:
            try:
                await git.export_tree(self.project, sha, tree)
            except GitError:
                await asyncio.to_thread(shutil.rmtree, tree, True)
                await git.sync(self.project)
                await git.export_tree(self.project, sha, tree)
        except GitError as error:
            raise StageFailed(f"checkout: {error}") from None
        self.sink.log("_local", "checkout", f"exported {sha}")

    async def hook(self, name: str, cwd: Path) -> None:
        script = self.facts.hooks.get(name)
        if not script:
            raise StageSkipped("no hook")
        await asyncio.to_thread(cwd.mkdir, parents=True, exist_ok=True)
        settings = self.ctx.settings
        try:
            await run_local_hook(
                script, cwd, self.facts.hook_env(None, str(cwd), name),
                timeout_s=settings.local_hook_timeout_s, line_max=settings.ssh_line_max_bytes,
                output_max=settings.ssh_step_output_max_bytes,
                lines_max=settings.ssh_step_output_max_lines,
                on_line=lambda line: self.sink.log("_local", name, line))
        except LocalHookError as error:
            raise StageFailed(f"{name}: {error}") from None

    @contextlib.asynccontextmanager
    async def stage(self, stage: str, hook: str | None = None) -> AsyncIterator[None]:
        self.sink.local_stage(stage, "running")
        started = time.monotonic()
        try:
            yield
        except StageSkipped as skip:
            self.sink.local_stage(stage, "skipped", duration_ms=0, reason=str(skip))
            return
        except StageFailed as error:
            self.sink.local_stage(stage, "failed", duration_ms=elapsed_ms(started),
                                  reason=str(error))
            raise
        except asyncio.CancelledError:
            self.sink.local_stage(stage, "cancelled", duration_ms=elapsed_ms(started),
                                    reason="cancelled")
            raise
        except Exception as error:
            self.sink.local_stage(stage, "failed", duration_ms=elapsed_ms(started),
                                  reason=str(error))
            raise StageFailed(f"{stage}: {error}") from error
        self.sink.local_stage(stage, "ok", duration_ms=elapsed_ms(started))
