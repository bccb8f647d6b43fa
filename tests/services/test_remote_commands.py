"""Ferry's host commands (services.releases.remote) run for real: a fleet SSH server, the
host's own shell, GNU tar, setsid. Each test is an attack on the host side: a hostile
artifact, a symlinked deploy path, a hook that leaves a process behind."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tarfile
from pathlib import Path

import pytest
import pytest_asyncio

from fleet.simulator import Fleet
from services.releases import remote
from services.settings import Settings
from services.ssh.client import SshService
from tests.pids import pid_gone

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(120)]
DEPLOY = "/srv/app"
PATH = Settings().hook_path


@pytest_asyncio.fixture
async def fleet(tmp_path: Path):
    async with Fleet(tmp_path / "fleet", 1) as fleet:
        yield fleet


@pytest_asyncio.fixture
async def session(tmp_path: Path, fleet: Fleet):
    ssh = SshService(Settings(data_dir=tmp_path / "data", ssh_connect_timeout_s=5.0))
    host = fleet.hosts[0]
    await ssh.trust_host_key(host.address, host.port, host.public_key)
    session = await ssh.connect(fleet.host_document(0))
    yield session
    await session.close()
    ssh.close()


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A directory outside every release, as the hosts see it too (only /srv is private)."""
    path = tmp_path / "victim"
    path.mkdir()
    (path / "target").write_text("original\n")
    return path


async def run(session, command: str, timeout: float = 60) -> tuple[int | None, list[str]]:
    lines: list[str] = []
    result = await session.run(command, timeout=timeout, on_line=lines.append)
    return result.exit_status, lines


def tarball(*members: tuple[str, str, str]) -> bytes:
    """A tar.gz of (kind, name, link target or content) members, as an attacker makes it."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, extra in members:
            info = tarfile.TarInfo(name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, extra
                tar.addfile(info)
            elif kind == "hardlink":
                info.type, info.linkname = tarfile.LNKTYPE, extra
                tar.addfile(info)
            elif kind == "device":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
                tar.addfile(info)
            else:
                data = extra.encode()
                info.size, info.mode = len(data), 0o4755 if kind == "setuid" else 0o644
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


TAG = "ferry-test"


async def extract(session, tmp_path: Path, data: bytes, release_id: int = 1,
                  deploy: str = DEPLOY) -> tuple[int | None, list[str]]:
    """Ferry's one command for upload and extract, `data` sent when the host asks for it;
    the status and the lines other than the stage markers."""
    sha = hashlib.sha256(data).hexdigest()
    source = tmp_path / f"{sha}.tar.gz"
    source.write_bytes(data)
    send = asyncio.get_running_loop().create_future()
    lines: list[str] = []

    def on_line(line: str) -> None:
        if line in (f"{TAG} send", f"{TAG} present"):
            send.set_result(line.endswith("send"))
        elif not line.startswith(f"{TAG} "):
            lines.append(line)

    result = await session.upload(
        remote.receive_and_extract(deploy, release_id, sha, f"release={release_id}", TAG),
        source, timeout=60, on_line=on_line, send_when=send)
    return result.exit_status, lines


def untouched(victim: Path) -> bool:
    return (sorted(p.name for p in victim.iterdir()) == ["target"]
            and (victim / "target").read_text() == "original\n")


# -- the artifact ------------------------------------------------------------------------

@pytest.mark.parametrize("attack", [
    "symlink to an outside directory, then a member below it",
    "relative symlink leaving the tree, then a member below it",
    "symlink chain through '.', then a member below it",
    "member with an absolute name",
    "member with '..' in its name",
    "hard link to an absolute path",
    "character device",
])
async def test_a_crafted_artifact_fails_the_host_and_writes_nothing_outside(
        session, fleet, tmp_path, victim, attack):
    members = {
        "symlink to an outside directory, then a member below it":
            [("symlink", "a", str(victim)), ("file", "a/evil", "pwned")],
        "relative symlink leaving the tree, then a member below it":
            [("symlink", "a", "../../../../../../../../" + str(victim).lstrip("/")),
             ("file", "a/evil", "pwned")],
        "symlink chain through '.', then a member below it":
            [("symlink", "b", "."), ("symlink", "b/c", str(victim)), ("file", "c/evil", "x")],
        "member with an absolute name": [("file", f"{victim}/evil", "pwned")],
        "member with '..' in its name": [("file", "../../../../../../evil", "pwned")],
        "hard link to an absolute path": [("hardlink", "h", f"{victim}/target")],
        "character device": [("device", "null2", "")],
    }[attack]
    status, lines = await extract(session, tmp_path, tarball(*members))
    assert status == remote.UNSAFE_ARTIFACT, lines
    assert lines[-1].startswith("ferry: the artifact was refused: ")
    assert lines[-1].endswith("nothing was extracted")
    assert untouched(victim)
    assert os.listdir(fleet.host_path(0, f"{DEPLOY}/releases")) == []


async def test_a_marker_symlink_in_the_artifact_is_replaced_not_followed(
        session, fleet, tmp_path, victim):
    data = tarball(("symlink", ".ferry-release", f"{victim}/marker"), ("file", "VERSION", "v1"))
    status, lines = await extract(session, tmp_path, data, release_id=7)
    assert (status, lines) == (0, ["extracted into releases/7"])
    assert untouched(victim)
    marker = fleet.host_path(0, f"{DEPLOY}/releases/7/.ferry-release")
    assert not marker.is_symlink() and marker.read_text() == "release=7\n"


async def test_set_id_bits_and_owners_of_the_artifact_are_not_kept(session, fleet, tmp_path):
    status, _ = await extract(session, tmp_path, tarball(("setuid", "tool", "#!/bin/sh\n")))
    assert status == 0
    info = fleet.host_path(0, f"{DEPLOY}/releases/1/tool").stat()
    assert info.st_mode & 0o6000 == 0 and info.st_uid == os.getuid()


async def test_a_symlink_inside_the_tree_is_kept_as_a_link(session, fleet, tmp_path):
    data = tarball(("file", "app.js", "ok"), ("symlink", "current.js", "app.js"))
    status, _ = await extract(session, tmp_path, data)
    assert status == 0
    assert os.readlink(fleet.host_path(0, f"{DEPLOY}/releases/1/current.js")) == "app.js"


# -- the deploy path ---------------------------------------------------------------------

async def test_a_deploy_path_that_is_a_symlink_is_refused_and_nothing_is_created(
        session, fleet, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    fleet.host_path(0, "/srv").mkdir(parents=True, exist_ok=True)
    fleet.host_path(0, DEPLOY).symlink_to(outside)
    status, lines = await run(session, remote.check_artifact(DEPLOY, "0" * 64))
    assert status == remote.DEPLOY_PATH_REFUSED
    assert lines == [f"ferry: deploy path {DEPLOY} resolves to {outside}; refusing"]
    assert list(outside.iterdir()) == []


async def test_a_deploy_path_below_a_symlinked_directory_is_refused(session, fleet, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    fleet.host_path(0, "/srv").mkdir(parents=True, exist_ok=True)
    fleet.host_path(0, "/srv/apps").symlink_to(outside)
    status, lines = await run(session, remote.check_artifact("/srv/apps/shop", "0" * 64))
    assert status == remote.DEPLOY_PATH_REFUSED
    assert lines == [f"ferry: deploy path /srv/apps/shop resolves to {outside}/shop; refusing"]
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("command", [
    lambda: remote.switch(DEPLOY, 1), lambda: remote.prune(DEPLOY, 2),
    lambda: remote.receive_and_extract(DEPLOY, 1, "0" * 64, "release=1", TAG),
    lambda: remote.switch_verify_prune(DEPLOY, 1, TAG, "true", 2),
    lambda: remote.verify_prune(DEPLOY, TAG, "true", 2),
], ids=["switch", "prune", "receive and extract", "switch verify prune", "verify prune"])
async def test_every_command_refuses_a_deploy_path_turned_into_a_symlink(
        session, fleet, tmp_path, command):
    outside = tmp_path / "outside"
    (outside / "releases" / "1").mkdir(parents=True)
    fleet.host_path(0, "/srv").mkdir(parents=True, exist_ok=True)
    fleet.host_path(0, DEPLOY).symlink_to(outside)
    status, lines = await run(session, command())
    assert status == remote.DEPLOY_PATH_REFUSED
    assert lines == [f"ferry: deploy path {DEPLOY} resolves to {outside}; refusing"]
    assert [p.name for p in outside.iterdir()] == ["releases"]


async def test_a_missing_deploy_path_is_created_as_real_directories(session, fleet):
    status, lines = await run(session, remote.check_artifact("/srv/a/b/app", "0" * 64))
    assert (status, lines) == (0, ["absent"])
    created = fleet.host_path(0, "/srv/a/b/app/releases")
    assert created.is_dir() and not created.is_symlink()


# -- hooks -------------------------------------------------------------------------------


async def test_a_hooks_nohup_child_does_not_outlive_the_hook(session, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}; echo started"
    status, lines = await run(session, remote.hook(script, "/", {}, PATH))
    assert (status, lines) == (0, ["started"])
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_hook_that_times_out_is_killed_with_its_children(session, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"sleep 300 & echo $! > {pid_file}; wait"
    with pytest.raises(Exception, match="timed out"):
        await run(session, remote.hook(script, "/", {}, PATH), timeout=2)
    for _ in range(100):
        if pid_file.exists():
            break
        await asyncio.sleep(0.05)
    assert await pid_gone(int(pid_file.read_text()))


def health_check(script: str, env: dict[str, str] | None = None) -> str:
    """Ferry's verify step alone, with `script` as the project's health check command."""
    command = remote.health_command(script, "/", env or {}, PATH)
    return f"cd / || exit\n{remote._verify(command, TAG)}"


async def test_a_health_checks_nohup_child_does_not_outlive_the_check(session, tmp_path):
    pid_file = tmp_path / "child.pid"
    script = f"nohup sleep 300 >/dev/null 2>&1 & echo $! > {pid_file}; echo started"
    status, lines = await run(session, health_check(script))
    assert (status, lines) == (0, [f"{TAG} verify", "started", f"{TAG} verify-status 0"])
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_health_check_that_times_out_is_killed_with_its_children(session, tmp_path):
    pid_file = tmp_path / "child.pid"
    with pytest.raises(Exception, match="timed out"):
        await run(session, health_check(f"sleep 300 & echo $! > {pid_file}; wait"), timeout=2)
    for _ in range(100):
        if pid_file.exists():
            break
        await asyncio.sleep(0.05)
    assert await pid_gone(int(pid_file.read_text()))


async def test_a_health_check_runs_with_bash_e_in_a_clean_environment(session):
    script = 'echo "[$FLEET_HOST] [$PATH] [$APP_ENV]"; false; echo not reached'
    status, lines = await run(session, health_check(script, {"APP_ENV": "$(id)"}))
    assert (status, lines) == (0, [f"{TAG} verify", f"[] [{PATH}] [$(id)]",
                                   f"{TAG} verify-status 1"])


async def test_a_hooks_exit_status_is_the_commands(session):
    assert (await run(session, remote.hook("exit 7", "/", {}, PATH)))[0] == 7
    assert (await run(session, remote.hook("false; echo not reached", "/", {}, PATH))) == (
        1, [])


async def test_hooks_run_in_a_clean_environment(session):
    """The SSH session's environment (here FLEET_HOST) does not reach the hook; Ferry's
    values and the fixed PATH do."""
    script = 'echo "[$FLEET_HOST] [$PATH] [$FERRY_STAGE] [$APP_ENV] [$HOME]"'
    status, lines = await run(session, remote.hook(
        script, "/", {"APP_ENV": "prod", "FERRY_STAGE": "after_release"}, PATH))
    assert status == 0
    assert lines[0].startswith(f"[] [{PATH}] [after_release] [prod] [/")


async def test_hook_values_are_never_run_as_shell_text(session, tmp_path):
    value = f"$(touch {tmp_path}/pwned1)`touch {tmp_path}/pwned2`;touch {tmp_path}/pwned3"
    status, lines = await run(session, remote.hook('printf "%s\\n" "$APP_ENV"', "/",
                                                   {"APP_ENV": value}, PATH))
    assert (status, lines) == (0, [value])
    assert not list(tmp_path.glob("pwned*"))


async def test_a_deploy_path_through_a_file_or_a_dangling_link_is_refused(session, fleet):
    fleet.host_path(0, "/srv").mkdir(parents=True, exist_ok=True)
    fleet.host_path(0, "/srv/file").write_text("x")
    fleet.host_path(0, "/srv/dangling").symlink_to("/nonexistent-ferry-target")
    for path, part in (("/srv/file/app", "/srv/file"), ("/srv/dangling", "/srv/dangling")):
        status, lines = await run(session, remote.check_artifact(path, "0" * 64))
        assert status == remote.DEPLOY_PATH_REFUSED
        assert lines == [f"ferry: deploy path {path}: {part} is not a directory that can "
                         "be entered"]
    assert not Path("/nonexistent-ferry-target").exists()


# -- receiving and pruning ---------------------------------------------------------------

async def test_an_artifact_that_does_not_match_its_sha256_is_not_kept_or_extracted(
        session, fleet, tmp_path):
    source = tmp_path / "artifact.tar.gz"
    source.write_bytes(tarball(("file", "VERSION", "v1")))
    send = asyncio.get_running_loop().create_future()
    send.set_result(True)
    lines: list[str] = []
    result = await session.upload(remote.receive_and_extract(DEPLOY, 1, "0" * 64, "r", TAG),
                                  source, timeout=60, on_line=lines.append, send_when=send)
    assert result.exit_status == 3
    assert lines[-1].startswith("sha256 mismatch: got ")
    assert f"{TAG} extract" not in lines
    assert os.listdir(fleet.host_path(0, f"{DEPLOY}/.ferry/artifacts")) == []
    assert os.listdir(fleet.host_path(0, f"{DEPLOY}/releases")) == ["1.tmp"]


async def test_a_stale_unfinished_release_is_replaced(session, fleet, tmp_path):
    stale = fleet.host_path(0, f"{DEPLOY}/releases/4.tmp")
    stale.mkdir(parents=True)
    (stale / "leftover").write_text("x")
    status, _ = await extract(session, tmp_path, tarball(("file", "VERSION", "v4")), 4)
    assert status == 0
    assert sorted(os.listdir(fleet.host_path(0, f"{DEPLOY}/releases/4"))) == [
        ".ferry-release", "VERSION"]


def _release(root: Path, name: str, marker: bool = True) -> None:
    (root / "releases" / name).mkdir(parents=True)
    if marker:
        (root / "releases" / name / remote.MARKER).write_text(f"release={name}\n")


async def test_the_switch_tells_where_a_current_not_made_by_ferry_pointed(session, fleet):
    deploy = fleet.host_path(0, DEPLOY)
    (deploy / "releases" / "3").mkdir(parents=True)
    (deploy / "current").symlink_to("./elsewhere")
    status, lines = await run(session, remote.switch(DEPLOY, 3))
    assert (status, lines) == (0, ["previous=./elsewhere"])
    status, lines = await run(session, remote.switch(DEPLOY, 3))
    assert (status, lines) == (0, ["previous=releases/3"])


async def test_prune_keeps_the_newest_releases_and_current_and_nothing_else_of_ferrys(
        session, fleet):
    root = fleet.host_path(0, DEPLOY)
    for name in ("1", "2", "3", "9", "10"):
        _release(root, name)
    os.symlink("releases/1", root / "current")
    status, lines = await run(session, remote.prune(DEPLOY, 2))
    assert (status, lines) == (0, ["pruned releases 2 3"])
    assert sorted(os.listdir(root / "releases")) == ["1", "10", "9"]


async def test_prune_leaves_directories_that_are_not_ferrys_releases(session, fleet):
    root = fleet.host_path(0, DEPLOY)
    for name in ("1", "2", "3", "123-manual", "notes", "007"):
        _release(root, name)
    _release(root, "0", marker=False)
    _release(root, "4", marker=False)
    for name in ("5.tmp", "notes.tmp"):
        (root / "releases" / name).mkdir()
    os.symlink("releases/3", root / "current")
    status, _ = await run(session, remote.prune(DEPLOY, 1))
    assert status == 0
    assert sorted(os.listdir(root / "releases")) == [
        "0", "007", "123-manual", "3", "4", "notes", "notes.tmp"]


async def test_prune_keeps_the_newest_artifacts_and_only_removes_ferrys(session, fleet):
    store = fleet.host_path(0, f"{DEPLOY}/.ferry/artifacts")
    store.mkdir(parents=True)
    (fleet.host_path(0, f"{DEPLOY}/releases")).mkdir()
    names = [f"{digit * 64}.tar.gz" for digit in "abcd"]
    for age, name in enumerate(names):
        (store / name).write_bytes(b"x")
        os.utime(store / name, (1_000_000 + age, 1_000_000 + age))
    (store / "notes.tar.gz").write_bytes(b"x")
    os.utime(store / "notes.tar.gz", (1, 1))
    status, _ = await run(session, remote.prune(DEPLOY, 2))
    assert status == 0
    assert sorted(os.listdir(store)) == sorted([*names[2:], "notes.tar.gz"])
