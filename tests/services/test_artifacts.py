"""ArtifactService on real directories and real tar.gz files; no mocks."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.build.artifacts import ArtifactError, ArtifactService
from services.git.mirrors import GitService
from services.settings import Settings
from tests.gitrepo import make_repo

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2, thread_name_prefix="test-artifacts") as pool:
        yield pool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the shared fixture: artifacts need no database."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def service(settings: Settings, executor: ThreadPoolExecutor) -> ArtifactService:
    return ArtifactService(settings, executor)


@pytest.fixture
def project() -> dict:
    return {"name": "demo", "hooks": {"after_checkout": "npm ci && npm run build"}}


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "dist" / "js").mkdir(parents=True)
    (root / "dist" / "js" / "app.js").write_text("console.log('hi')\n")
    (root / "index.html").write_text("<p>hi</p>\n")
    run = root / "run.sh"
    run.write_text("#!/bin/sh\n")
    run.chmod(0o755)
    (root / "latest").symlink_to("dist")
    (root / "dist" / "home").symlink_to("../index.html")
    return root


async def test_package_writes_tar_gz_with_sha256_sidecar(service, project, tree):
    artifact = await service.package(project, SHA, tree)
    data = artifact.path.read_bytes()
    assert artifact.cached is False
    assert artifact.sha256 == hashlib.sha256(data).hexdigest()
    assert artifact.size == len(data)
    assert artifact.path.name == f"{artifact.key}.tar.gz"
    sidecar = artifact.path.with_name(artifact.path.name + ".sha256").read_text()
    assert sidecar == f"{artifact.sha256}  {artifact.path.name}\n"


async def test_second_package_of_same_sha_and_hook_is_cached(service, project, tree):
    first = await service.package(project, SHA, tree)
    mtime = first.path.stat().st_mtime_ns
    second = await service.package(project, SHA, tree)
    assert second.cached is True
    assert (second.path, second.sha256, second.size) == (first.path, first.sha256, first.size)
    assert second.path.stat().st_mtime_ns == mtime
    assert service.cached(project, SHA) == second


def test_cached_is_none_before_packaging(service, project):
    assert service.cached(project, SHA) is None


def test_different_build_hook_gives_different_key(service, project):
    rebuilt = {**project, "hooks": {"after_checkout": "make dist"}}
    assert service.key(project, SHA) != service.key(rebuilt, SHA)
    assert service.key(project, SHA).startswith(SHA)
    assert service.key({"name": "demo"}, SHA) == service.key({"name": "demo", "hooks": {}}, SHA)


def test_key_refuses_anything_but_a_full_sha(service, project):
    with pytest.raises(ValueError, match="40-hex"):
        service.key(project, "main")


async def test_tar_contents_are_relative_and_keep_symlinks(service, project, tree):
    artifact = await service.package(project, SHA, tree)
    with tarfile.open(artifact.path, "r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert set(members) == {"dist", "dist/home", "dist/js", "dist/js/app.js", "index.html",
                            "latest", "run.sh"}
    for member in members.values():
        assert not member.name.startswith("/") and ".." not in member.name.split("/")
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
    assert members["latest"].issym() and members["latest"].linkname == "dist"
    assert members["dist/home"].issym() and members["dist/home"].linkname == "../index.html"
    assert members["run.sh"].mode & 0o111


async def test_same_tree_packages_to_the_same_bytes(service, project, tree):
    one = await service.package(project, SHA, tree)
    two = await service.package(project, OTHER_SHA, tree)
    assert one.sha256 == two.sha256


async def test_two_exports_of_one_commit_package_to_identical_bytes(tmp_path, executor):
    repo = make_repo(tmp_path / "origin")
    digests = set()
    for run in ("a", "b"):
        settings = Settings(data_dir=tmp_path / run, git_allow_file_urls=True)
        project = {"name": "demo", "repo_url": repo.url}
        await GitService(settings, executor).export_tree(project, repo.commits[1],
                                                         tmp_path / run / "tree")
        artifact = await ArtifactService(settings, executor).package(
            project, repo.commits[1], tmp_path / run / "tree")
        digests.add(artifact.sha256)
    assert len(digests) == 1


async def test_artifact_over_the_size_cap_fails_clearly_and_leaves_nothing(
        settings, executor, project, tree):
    (tree / "noise.bin").write_bytes(os.urandom(64 * 1024))
    service = ArtifactService(settings.replace(artifact_max_bytes=16 * 1024), executor)
    with pytest.raises(ArtifactError, match="larger than artifact_max_bytes"):
        await service.package(project, SHA, tree)
    assert list((settings.artifacts_dir / "demo").iterdir()) == []
    assert service.cached(project, SHA) is None


async def test_special_files_are_refused(service, project, tree):
    os.mkfifo(tree / "pipe")
    with pytest.raises(ArtifactError, match="not a regular file"):
        await service.package(project, SHA, tree)


async def test_prune_keeps_the_newest_artifacts(service, project, tree):
    old = await service.package(project, SHA, tree)
    os.utime(old.path, (1, 1))
    new = await service.package(project, OTHER_SHA, tree)
    await service.prune(project, keep=1)
    assert service.cached(project, SHA) is None and not old.path.exists()
    kept = service.cached(project, OTHER_SHA)
    assert kept is not None and (kept.path, kept.sha256) == (new.path, new.sha256)


async def test_blocking_build_called_on_the_loop_raises(service, project, tree):
    with pytest.raises(RuntimeError, match="event loop"):
        service._build(tree, service.settings.artifacts_dir / "x.tar.gz")
    assert (await service.package(project, SHA, tree)).cached is False
