"""A host's pipeline on its own: a HostContext with the real SSH service, a real fleet
host and a sink that keeps what it is told. No release, no database."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from services.build.artifacts import Artifact
from services.releases.context import HostContext, ReleaseFacts
from services.releases.pipeline import HostPipeline
from services.releases.stages import StageFailed
from services.settings import Settings
from services.ssh.client import SshService

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
DEPLOY = "/srv/app"


class ListSink:
    """Keeps every stage event, log line and report, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []      # (stage, state)
        self.reasons: dict[str, str | None] = {}
        self.lines: list[tuple[str, str]] = []       # (stage, line)
        self.report: dict[str, Any] = {}

    def stage_start(self, host: str, stage: str) -> None:
        self.events.append((stage, "running"))

    def stage_end(self, host: str, stage: str, state: str, duration_ms: int,
                  reason: str | None = None) -> None:
        self.events.append((stage, state))
        self.reasons[stage] = reason

    def log(self, host: str, stage: str, line: str) -> None:
        self.lines.append((stage, line))

    def host_report(self, host: str, **report: Any) -> None:
        self.report.update(report)

    def ended(self) -> list[tuple[str, str]]:
        return [event for event in self.events if event[1] != "running"]

    def logged(self, stage: str) -> list[str]:
        return [line for where, line in self.lines if where == stage]


@pytest_asyncio.fixture
async def fleet(make_fleet):
    return await make_fleet(1)


@pytest_asyncio.fixture
async def ssh(tmp_path: Path, fleet):
    service = SshService(Settings(data_dir=tmp_path / "data", ssh_connect_timeout_s=5.0))
    host = fleet.hosts[0]
    await service.trust_host_key(host.address, host.port, host.public_key)
    yield service
    service.close()


def artifact(tmp_path: Path, version: str) -> Artifact:
    """The same version gives the same bytes, as Ferry's builder does (gzip mtime 0):
    the upload skip keys on the artifact's sha256."""
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w") as tar:
        data = version.encode()
        info = tarfile.TarInfo("VERSION")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    sha = hashlib.sha256(buf.getvalue()).hexdigest()
    path = tmp_path / f"{sha}.tar.gz"
    path.write_bytes(buf.getvalue())
    return Artifact(path, sha, len(buf.getvalue()), False, sha)


def facts(release_id: int, **fields: Any) -> ReleaseFacts:
    values = {"project": "shop", "environment": "production", "kind": "deploy", "ref": "main",
              "sha": "a" * 40, "created_by": "admin", "deploy_path": DEPLOY,
              "keep_releases": 3, **fields}
    return ReleaseFacts(id=release_id, **values)


async def deploy(ssh, fleet, tmp_path: Path, release_id: int, version: str = "v1",
                 settings: Settings | None = None, **project: Any) -> ListSink:
    """Deploys one release to the fleet's host; the sink it reported to."""
    sink = ListSink()
    ctx = HostContext(settings or Settings(data_dir=tmp_path / "data"), ssh,
                      facts(release_id, **project), sink)
    pipeline = HostPipeline(ctx, fleet.host_document(0))
    try:
        await pipeline.deploy(artifact(tmp_path, version))
    finally:
        await pipeline.close()
    return sink


def current(fleet) -> str:
    return os.readlink(fleet.host_path(0, f"{DEPLOY}/current"))


HEALTHY = {"command": "test -s VERSION", "timeout_s": 5, "retries": 3, "interval_s": 0.01}


async def test_a_deploy_runs_every_stage_in_order_with_its_log(ssh, fleet, tmp_path):
    sink = await deploy(ssh, fleet, tmp_path, 1, health_check=HEALTHY)
    assert sink.ended() == [
        ("upload", "ok"), ("extract", "ok"), ("before_release", "skipped"), ("release", "ok"),
        ("after_release", "skipped"), ("verify", "ok"), ("prune", "ok")]
    assert [stage for stage, state in sink.events if state == "running"] == [
        "upload", "extract", "before_release", "release", "after_release", "verify", "prune"]
    assert sink.logged("upload")[-1].endswith("bytes, sha256 verified")
    assert sink.logged("extract") == ["extracted into releases/1"]
    assert sink.logged("release") == ["current -> releases/1 (was nothing)"]
    assert current(fleet) == "releases/1"
    marker = fleet.host_path(0, f"{DEPLOY}/releases/1/.ferry-release").read_text()
    assert marker == f"release=1 project=shop ref=main sha={'a' * 40}\n"


async def test_a_standard_deploy_makes_two_exec_requests_per_host(ssh, fleet, tmp_path):
    before = fleet.hosts[0].commands
    await deploy(ssh, fleet, tmp_path, 1, health_check=HEALTHY)
    assert fleet.hosts[0].commands - before == 2


async def test_a_hook_takes_an_exec_request_and_after_release_splits_switch_and_verify(
        ssh, fleet, tmp_path):
    before = fleet.hosts[0].commands
    sink = await deploy(ssh, fleet, tmp_path, 1, health_check=HEALTHY,
                        hooks={"before_release": "echo before", "after_release": "echo after"})
    # receive+extract, before_release, switch, after_release, verify+prune
    assert fleet.hosts[0].commands - before == 5
    assert sink.logged("before_release") == ["before"]
    assert sink.logged("after_release") == ["after"]
    assert ("verify", "ok") in sink.ended() and ("prune", "ok") in sink.ended()


async def test_the_upload_is_skipped_when_the_host_has_the_artifact(ssh, fleet, tmp_path):
    await deploy(ssh, fleet, tmp_path, 1)
    sink = await deploy(ssh, fleet, tmp_path, 2)
    assert sink.report["upload_skipped"] is True
    assert any("upload skipped" in line for line in sink.logged("upload"))
    assert current(fleet) == "releases/2"


async def test_the_switch_reports_the_previous_release(ssh, fleet, tmp_path):
    await deploy(ssh, fleet, tmp_path, 1)
    sink = await deploy(ssh, fleet, tmp_path, 2, version="v2")
    assert sink.report["previous"] == "releases/1"
    assert sink.logged("release") == ["current -> releases/2 (was releases/1)"]


async def test_a_failing_hook_fails_the_host_with_the_reason_and_never_switches(
        ssh, fleet, tmp_path):
    await deploy(ssh, fleet, tmp_path, 1)
    with pytest.raises(StageFailed, match="before_release: exited with status 3"):
        await deploy(ssh, fleet, tmp_path, 2, version="v2",
                     hooks={"before_release": "echo broken; exit 3"})
    assert current(fleet) == "releases/1"


async def test_a_failing_hook_is_recorded_on_its_stage(ssh, fleet, tmp_path):
    sink = ListSink()
    ctx = HostContext(Settings(data_dir=tmp_path / "data"), ssh,
                      facts(1, hooks={"after_release": "echo no; exit 4"}), sink)
    pipeline = HostPipeline(ctx, fleet.host_document(0))
    with pytest.raises(StageFailed):
        await pipeline.deploy(artifact(tmp_path, "v1"))
    await pipeline.close()
    assert sink.ended()[-1] == ("after_release", "failed")
    assert sink.reasons["after_release"] == "after_release: exited with status 4"
    assert sink.logged("after_release") == ["no"]


async def test_verify_retries_until_the_check_passes_then_prunes(ssh, fleet, tmp_path):
    flag = fleet.host_path(0, "/srv/attempts")
    flag.parent.mkdir(parents=True, exist_ok=True)
    check = {**HEALTHY, "command": "echo x >> /srv/attempts; "
                                   "[ $(wc -l < /srv/attempts) -ge 3 ]"}
    before = fleet.hosts[0].commands
    sink = await deploy(ssh, fleet, tmp_path, 1, health_check=check)
    assert sink.logged("verify") == ["health check attempt 1/3 failed (status 1)",
                                     "health check attempt 2/3 failed (status 1)",
                                     "health check passed (attempt 3/3)"]
    assert sink.ended()[-2:] == [("verify", "ok"), ("prune", "ok")]
    assert fleet.hosts[0].commands - before == 4


async def test_a_check_that_keeps_failing_fails_the_host_and_prunes_nothing(
        ssh, fleet, tmp_path):
    for release in (1, 2):
        await deploy(ssh, fleet, tmp_path, release, version=f"v{release}", keep_releases=1)
    with pytest.raises(StageFailed, match="verify: health check failed 3 times"):
        await deploy(ssh, fleet, tmp_path, 3, version="v3", keep_releases=1,
                     health_check={**HEALTHY, "command": "false"})
    assert sorted(os.listdir(fleet.host_path(0, f"{DEPLOY}/releases"))) == ["2", "3"]


async def test_a_hung_check_times_out_on_its_own_deadline(ssh, fleet, tmp_path):
    with pytest.raises(StageFailed, match="verify: timed out after 6s"):
        await deploy(ssh, fleet, tmp_path, 1,
                      health_check={**HEALTHY, "command": "sleep 60", "timeout_s": 1})


async def test_rollback_switches_to_a_kept_release_without_upload_or_prune(
        ssh, fleet, tmp_path):
    await deploy(ssh, fleet, tmp_path, 1)
    await deploy(ssh, fleet, tmp_path, 2, version="v2")
    sink = ListSink()
    ctx = HostContext(Settings(data_dir=tmp_path / "data"), ssh, facts(3, kind="rollback"),
                      sink)
    pipeline = HostPipeline(ctx, fleet.host_document(0))
    await pipeline.switch_to(1)
    await pipeline.close()
    assert current(fleet) == "releases/1"
    assert sink.report["previous"] == "releases/2"
    assert dict(sink.ended())["prune"] == "skipped"


async def test_a_checks_output_is_its_own_log_and_cannot_pose_as_ferrys(ssh, fleet, tmp_path):
    check = {**HEALTHY, "command": "echo previous=releases/99; echo ferry-x prune; "
                                   "echo 'ferry: not a refusal'; test -s VERSION"}
    sink = await deploy(ssh, fleet, tmp_path, 1, health_check=check)
    assert sink.logged("verify") == ["previous=releases/99", "ferry-x prune",
                                     "ferry: not a refusal",
                                     "health check passed (attempt 1/3)"]
    assert sink.report["previous"] is None
    assert sink.ended()[-2:] == [("verify", "ok"), ("prune", "ok")]
