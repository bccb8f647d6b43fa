"""What a pipeline may see of a release: its facts, the services it uses, where it reports.

A pipeline never receives the ReleaseRun or the whole Services: a HostContext holds the
settings, the SSH service, the release's facts (frozen) and a sink for what it reports,
so a host's stages can be run and tested on their own, and the pipeline cannot reach into
the release's state behind the run's back.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from services.build.artifacts import ArtifactService
    from services.git.mirrors import GitService
    from services.settings import Settings
    from services.ssh.client import SshService
    from services.store import Store


@dataclass(frozen=True)
class ReleaseFacts:
    """The release's facts a pipeline needs, fixed once the commit is resolved."""

    id: int
    project: str
    environment: str
    kind: str
    ref: str
    sha: str | None
    created_by: str
    deploy_path: str
    keep_releases: int
    hooks: Mapping[str, str] = field(default_factory=dict)
    health_check: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, release: Mapping[str, Any], project: Mapping[str, Any],
           keep_releases: int) -> ReleaseFacts:
        check = project.get("health_check")
        return cls(
            id=release["_id"], project=release["project"], environment=release["environment"],
            kind=release["kind"], ref=release["ref"], sha=release.get("sha"),
            created_by=release["created_by"], deploy_path=project["deploy_path"],
            keep_releases=int(keep_releases),
            hooks=MappingProxyType(dict(project.get("hooks") or {})),
            health_check=MappingProxyType(dict(check)) if check else None)

    def release_path(self) -> str:
        return f"{self.deploy_path}/releases/{int(self.id)}"

    def hook_env(self, host: Mapping[str, Any] | None, cwd: str,
                 stage: str) -> dict[str, str]:
        """Ferry's values for a hook, as environment variables (never script text); a
        host's variables first, so that Ferry's own names always win."""
        env = dict(host.get("variables") or {}) if host else {}
        env.update({
            "FERRY_RELEASE_ID": str(self.id), "FERRY_PROJECT": self.project,
            "FERRY_ENVIRONMENT": self.environment, "FERRY_REF": self.ref,
            "FERRY_SHA": self.sha or "", "FERRY_KIND": self.kind,
            "FERRY_DEPLOY_PATH": self.deploy_path, "FERRY_RELEASE_PATH": self.release_path(),
            "FERRY_STAGE": stage, "FERRY_USER": self.created_by, "FERRY_CWD": cwd})
        if host:
            env["FERRY_HOST"] = host["name"]
        return env

    def metadata(self) -> str:
        """The one line Ferry writes into a release's marker file on the host."""
        return f"release={self.id} project={self.project} ref={self.ref} sha={self.sha}"


class HostSink(Protocol):
    """Where a host's pipeline reports; ReleaseRecord is the one used by releases."""

    def stage_start(self, host: str, stage: str) -> None: ...

    def stage_end(self, host: str, stage: str, state: str, duration_ms: int,
                  reason: str | None = None) -> None: ...

    def log(self, host: str, stage: str, line: str) -> None: ...

    def host_report(self, host: str, **report: Any) -> None:
        """What the host told, kept on its host run: `previous` (what `current` pointed
        to before the switch, None: nothing), `upload_skipped` (it had the artifact)."""


class LocalSink(Protocol):
    """Where the local stages report."""

    def local_stage(self, stage: str, state: str, *, duration_ms: int | None = None,
                    reason: str | None = None, cached_from: int | None = None) -> None: ...

    def log(self, host: str, stage: str, line: str) -> None: ...


@dataclass(frozen=True)
class HostContext:
    settings: Settings
    ssh: SshService
    facts: ReleaseFacts
    sink: HostSink


@dataclass(frozen=True)
class LocalContext:
    """`project` is the project document, as the mirrors and the artifact store take it;
    `artifact_origin` names the earlier release that built an artifact (by sha256), so a
    reused one can say where it comes from."""

    settings: Settings
    git: GitService
    artifacts: ArtifactService
    executor: Executor
    project: Mapping[str, Any]
    facts: ReleaseFacts
    sink: LocalSink
    artifact_origin: Callable[[str], Awaitable[int | None]] | None = None


@dataclass(frozen=True)
class Engine:
    """What a release run works with, built once by Services: the run gets this, never
    all of Services, and hands each pipeline only its own slice (above)."""

    settings: Settings
    store: Store
    git: GitService
    ssh: SshService
    artifacts: ArtifactService
    executor: Executor
