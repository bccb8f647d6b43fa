"""Each host's stages: upload, extract, hooks, the atomic switch, verify and prune.

Stage order follows the design's table. A host's `current` moves only by the atomic rename
in `release`, so a failure anywhere leaves the host on its old release or its new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from services.build.artifacts import Artifact
from services.registry import validation as check
from services.releases import remote
from services.releases.context import HostContext
from services.releases.stages import StageFailed, elapsed_ms
from services.ssh.hostkeys import SshError
from services.ssh.session import CommandResult, HostSession

HOST_STAGES = ("upload", "extract", "before_release", "release", "after_release", "verify",
               "prune")
FERRY_STAGES = ("upload", "extract", "release", "prune")   # Ferry's own commands, no hook


class HostPipeline:
    """Runs one host's stages over one SSH connection, recording each stage.

    Few exec requests, because each one costs the host a fork, privilege separation and
    a login shell: one command prepares the deploy path, receives the artifact (unless
    the host has it) and extracts it; one switches, runs the health check and prunes.
    A hook, and a health check retried after a failed attempt, take one more each.
    Inside a command, a line `<tag> <stage>` starts the next stage, so each stage still
    has its own log, duration and timeout.
    """

    def __init__(self, ctx: HostContext, host: dict) -> None:
        self.ctx = ctx
        self.facts = ctx.facts
        self.sink = ctx.sink
        self.settings = ctx.settings
        self.host = host
        self.name = host["name"]
        self.deploy_path = ctx.facts.deploy_path
        self.session: HostSession | None = None
        self.tag = f"ferry-{secrets.token_hex(6)}"
        self.current: str | None = None       # the stage running
        self.started = 0.0
        self.skips: dict[str, str] = {}       # stages to show as skipped once passed
        self._deadline: asyncio.Timeout | None = None
        self.refusal: str | None = None       # the `ferry: ` reason of Ferry's command

    # -- the stages --------------------------------------------------------------------

    async def deploy(self, artifact: Artifact) -> None:
        """Upload, extract, switch, hooks, verify, prune. Raises StageFailed."""
        async with self.failing():
            self.begin("upload")
            await self.connect()
            await self.receive(artifact)
            await self.hook("before_release", remote.release_dir(self.deploy_path,
                                                                 self.facts.id))
            await self.release(self.facts.id, prune=True)

    async def switch_to(self, target_id: int) -> None:
        """Rollback: switch to a release still kept on the host, then hooks and verify."""
        for stage in ("upload", "extract", "before_release", "prune"):
            self.sink.log(self.name, stage, "skipped: rollback: no upload")
            self.sink.stage_end(self.name, stage, "skipped", 0, "rollback: no upload")
        await self.switch_and_check(target_id)

    async def switch_and_check(self, target_id: int) -> None:
        """Switch to a kept release, then after_release and verify; no prune."""
        async with self.failing():
            await self.release(target_id, prune=False)

    async def receive(self, artifact: Artifact) -> None:
        send = asyncio.get_running_loop().create_future()

        def on_word(word: str) -> None:
            if word in ("present", "send") and not send.done():
                send.set_result(word == "send")
                if word == "present":
                    self.log(f"artifact {artifact.sha256[:12]} already on host; upload skipped")
                    self.sink.host_report(self.name, upload_skipped=True)
            elif word == "extract" and send.done() and send.result():
                self.log(f"uploaded {artifact.size} bytes, sha256 verified")

        command = remote.receive_and_extract(self.deploy_path, self.facts.id, artifact.sha256,
                                             self.facts.metadata(), self.tag)
        result = await self.exec(command, ("upload", "extract"), on_word=on_word,
                                 source=artifact.path, send_when=send)
        self.expect(result, "extract", {"upload": "checksum or write failed"})
        self.end("ok")

    async def release(self, target_id: int, *, prune: bool) -> None:
        """The switch, after_release, verify and (`prune`) prune; with no after_release
        hook, all in one command, the first health check included."""
        self.begin("release")
        await self.connect()
        current = f"{self.deploy_path}/current"
        after = self.facts.hooks.get("after_release")
        check = self.check_command(current)
        keep = self.facts.keep_releases if prune else None
        if not after:
            self.skips["after_release"] = "no hook"
        if check is None:
            self.skips["verify"] = "no health check"
        previous: list[str] = []

        def on_line(line: str) -> bool:
            if self.current == "release" and line.startswith("previous="):
                previous.append(line.removeprefix("previous="))
                self.sink.host_report(self.name, previous=previous[0] or None)
                self.log(f"current -> releases/{target_id} (was {previous[0] or 'nothing'})")
                return True
            return False

        stages = ["release"]
        if after:
            command = remote.switch(self.deploy_path, target_id)
        else:
            command = remote.switch_verify_prune(self.deploy_path, target_id, self.tag, check,
                                                 keep)
            stages += [*(["verify"] if check else []), *(["prune"] if prune else [])]
        status: list[int] = []
        result = await self.exec(command, stages, on_line=on_line, verify_status=status)
        if result.exit_status == remote.MISSING_RELEASE and self.current == "release":
            raise StageFailed(f"release: release {target_id} is no longer kept on this host")
        self.expect(result, None, {"release": "switch failed"})
        if after:
            self.end("ok")
            await self.hook("after_release", current)
            if check is not None:
                self.begin("verify")
                await self.verify(check, keep, first_status=None)
            elif prune:
                await self.prune_only()
        elif self.current == "verify":
            await self.verify(check, keep, first_status=status[0] if status else None)
        elif check is not None and status and status[0] == 0:   # passed, then pruned
            retries = (self.facts.health_check or {}).get("retries", self.settings.verify_retries)
            self.sink.log(self.name, "verify", f"health check passed (attempt 1/{retries})")
        if self.current is not None:
            self.end("ok")
        self.flush_skips(None)

    async def prune_only(self) -> None:
        self.begin("prune")
        result = await self.exec(remote.prune(self.deploy_path, self.facts.keep_releases),
                                 ["prune"])
        self.expect(result, "prune", {})

    async def verify(self, check: str, keep: int | None, *, first_status: int | None) -> None:
        """The health check's attempts; the first may have run with the switch already
        (`first_status`). Prune runs in the same command as the passing attempt."""
        spec = self.facts.health_check or {}
        retries = spec.get("retries", self.settings.verify_retries)
        stages = ["verify", *(["prune"] if keep is not None else [])]
        status = first_status
        for attempt in range(1, retries + 1):
            if status is None:
                if attempt > 1:
                    await asyncio.sleep(spec.get("interval_s", self.settings.verify_interval_s))
                statuses: list[int] = []
                result = await self.exec(remote.verify_prune(self.deploy_path, self.tag, check,
                                                             keep), stages, verify_status=statuses)
                self.expect(result, None, {})
                if not statuses:
                    raise StageFailed("verify: the health check ended without a status")
                status = statuses[0]
            if status == 0:
                self.sink.log(self.name, "verify",
                              f"health check passed (attempt {attempt}/{retries})")
                return
            self.log(f"health check attempt {attempt}/{retries} failed (status {status})")
            status = None
        raise StageFailed(f"verify: health check failed {retries} times")

    def check_command(self, cwd: str) -> str | None:
        check = self.facts.health_check
        if not check:
            return None
        if check.get("command"):
            return remote.health_command(check["command"], cwd, self.hook_env(cwd, "verify"),
                                         self.settings.hook_path)
        return remote.health_url(check["url"], check["timeout_s"])

    async def hook(self, name: str, cwd: str) -> None:
        script = self.facts.hooks.get(name)
        if not script:
            self.begin(name)
            self.log("skipped: no hook")
            self.end("skipped", "no hook")
            return
        self.begin(name)
        await self.connect()
        env = self.hook_env(cwd, name)
        result = await self.exec(remote.hook(script, cwd, env, self.settings.hook_path), [name])
        self.expect(result, name, {})
        self.end("ok")

    def hook_env(self, cwd: str, stage: str) -> dict[str, str]:
        """The release's values for a hook on this host. Host variables stored before
        the current naming rules are left out here (the hook runs without them)."""
        variables = self.host.get("variables") or {}
        kept = {key: value for key, value in variables.items()
                if check.allowed_variable_name(key) and isinstance(value, str)}
        if len(kept) != len(variables):
            left_out = ", ".join(repr(key) for key in sorted(set(variables) - set(kept)))
            self.sink.log(self.name, stage, "[ferry] host variables whose names are not "
                                            f"allowed were left out: {left_out[:200]}")
        return self.facts.hook_env({**self.host, "variables": kept}, cwd, stage)

    # -- the connection and its commands ----------------------------------------------

    async def connect(self) -> None:
        if self.session is None:
            try:
                self.session = await self.ctx.ssh.connect(self.host)
            except SshError as error:
                raise StageFailed(error.reason) from None

    async def close(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            with contextlib.suppress(Exception):
                await session.close()

    def stage_timeout(self, stage: str) -> float:
        if stage in ("before_release", "after_release"):
            return self.settings.hook_timeout_s
        if stage == "verify":
            return (self.facts.health_check or {}).get("timeout_s", 10) + 5
        return self.settings.ssh_command_timeout_s

    async def exec(self, command: str, stages: list[str] | tuple[str, ...], *,
                   on_line: Callable[[str], bool] | None = None,
                   on_word: Callable[[str], None] | None = None,
                   verify_status: list[int] | None = None,
                   source: Path | None = None,
                   send_when: asyncio.Future | None = None) -> CommandResult:
        """One exec request running `stages` (the first already begun): a marker line
        `<tag> <stage>` ends the running stage and begins the next, with its own
        timeout. Output goes to the running stage's log; a `ferry: ` line of Ferry's
        own commands is kept as the reason of a refusal."""
        self.refusal: str | None = None
        prefix = f"{self.tag} "

        def line_seen(line: str) -> None:
            if line.startswith(prefix):
                word = line.removeprefix(prefix)
                if on_word is not None:
                    on_word(word)
                if word.startswith("verify-status ") and verify_status is not None:
                    number = word.removeprefix("verify-status ")
                    verify_status.append(int(number) if number.isdigit() else -1)
                elif word in stages and word != self.current:
                    self.end("ok")
                    self.begin(word)
                    if self._deadline is not None:
                        self._deadline.reschedule(asyncio.get_running_loop().time()
                                                  + self.stage_timeout(word))
                return
            if on_line is not None and on_line(line):
                return
            if line.startswith(remote.REASON_PREFIX) and self.current in FERRY_STAGES:
                self.refusal = line.removeprefix(remote.REASON_PREFIX)
            self.log(line)

        total = sum(self.stage_timeout(stage) for stage in stages)
        try:
            async with asyncio.timeout(None) as self._deadline:
                self._deadline.reschedule(asyncio.get_running_loop().time()
                                          + self.stage_timeout(self.current or stages[0]))
                if source is None:
                    return await self.session.run(command, timeout=total, on_line=line_seen)
                return await self.session.upload(command, source, timeout=total,
                                                 on_line=line_seen, send_when=send_when)
        except TimeoutError:
            raise StageFailed(f"{self.current}: timed out after "
                              f"{self.stage_timeout(self.current):g}s") from None
        except SshError as error:
            raise StageFailed(f"{self.current}: {error.reason}") from None
        finally:
            self._deadline = None

    def expect(self, result: CommandResult, last: str | None, failures: dict[str, str]) -> None:
        """Raise StageFailed for the running stage unless the command succeeded (and
        reached stage `last`)."""
        status = result.exit_status
        if status in remote.REFUSALS and self.refusal:
            raise StageFailed(f"{self.current}: {self.refusal}")
        if status != 0:
            detail = "no exit status" if status is None else f"exited with status {status}"
            if self.current in failures and status is not None:
                detail = f"{failures[self.current]} (status {status})"
            raise StageFailed(f"{self.current}: {detail}")
        if last is not None and self.current != last:
            raise StageFailed(f"{self.current}: the host's command ended before {last}")

    # -- recording ---------------------------------------------------------------------

    def log(self, line: str) -> None:
        self.sink.log(self.name, self.current or "release", line)

    def begin(self, stage: str) -> None:
        self.flush_skips(stage)
        self.sink.stage_start(self.name, stage)
        self.current, self.started = stage, time.monotonic()
        if stage == "prune":
            self.log(f"keeping the newest {self.facts.keep_releases} releases and current")

    def end(self, state: str, reason: str | None = None) -> None:
        if self.current is not None:
            stage, self.current = self.current, None
            self.sink.stage_end(self.name, stage, state, elapsed_ms(self.started), reason)

    def flush_skips(self, before: str | None) -> None:
        """Record as skipped the stages of self.skips that come before `before` (all)."""
        limit = HOST_STAGES.index(before) if before else len(HOST_STAGES)
        for stage in HOST_STAGES[:limit]:
            if stage in self.skips:
                reason = self.skips.pop(stage)
                self.sink.stage_start(self.name, stage)
                self.sink.log(self.name, stage, f"skipped: {reason}")
                self.sink.stage_end(self.name, stage, "skipped", 0, reason)

    @contextlib.asynccontextmanager
    async def failing(self) -> AsyncIterator[None]:
        """The running stage ends failed (or cancelled) with the reason."""
        try:
            yield
        except StageFailed as error:
            self.end("failed", str(error))
            raise
        except asyncio.CancelledError:
            self.end("cancelled", "cancelled")
            raise
        except Exception as error:
            stage = self.current
            self.end("failed", repr(error))
            raise StageFailed(f"{stage}: internal error {error!r}") from error
