"""Hostile repository content against the real exporter and packager: each test is one
attack, made with real git objects, and checks that nothing lands outside the tree."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.build.artifacts import ArtifactError, ArtifactService
from services.build.localrun import run_local_hook
from services.demo import PROJECT as DEMO_PROJECT
from services.git.export import ContentRefused
from services.git.mirrors import GitService
from services.settings import Settings
from tests.security.repokit import (
    FILE,
    SYMLINK,
    TREE,
    blob,
    blob_of_zeros,
    hostile_repo,
    tree,
)

MiB = 1024 * 1024


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2, thread_name_prefix="test-content") as pool:
        yield pool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the shared fixture: no database here."""
    return Settings(data_dir=tmp_path / "data", git_allow_file_urls=True, git_timeout_s=60)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory outside every tree, which no attack may change."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "keep.txt").write_text("untouched\n")
    return path


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


async def export(settings: Settings, executor, repo, tmp_path: Path) -> Path:
    service = GitService(settings, executor)
    project = {"name": "hostile", "repo_url": repo.url}
    await service.sync(project)
    dest = tmp_path / "work" / "tree"
    await service.export_tree(project, repo.sha, dest)
    return dest


async def refused(settings, executor, repo, tmp_path, match: str) -> Path:
    dest = tmp_path / "work" / "tree"
    with pytest.raises(ContentRefused, match=match):
        await export(settings, executor, repo, tmp_path)
    assert not dest.exists() or not list(dest.iterdir())
    return dest


async def test_absolute_symlink_is_refused_and_nothing_is_written_through_it(
        settings, executor, tmp_path, outside):
    before = snapshot(outside)
    repo = hostile_repo(tmp_path / "repo", [(SYMLINK, "escape", str(outside)),
                                            (FILE, "index.html", "hi\n")])
    await refused(settings, executor, repo, tmp_path, r"'escape'.*absolute symlink")
    assert snapshot(outside) == before


async def test_symlink_climbing_out_with_dotdot_is_refused(settings, executor, tmp_path):
    repo = hostile_repo(tmp_path / "repo", [(SYMLINK, "up", "../../outside/keep.txt")])
    await refused(settings, executor, repo, tmp_path, r"'up'.*leaves the tree")


async def test_symlink_leaving_through_another_symlink_is_refused(settings, executor, tmp_path):
    # Lexically "s/s/../.." is ".", but s -> . makes it two levels above the tree.
    repo = hostile_repo(tmp_path / "repo", [(SYMLINK, "e", "s/s/../.."), (SYMLINK, "s", ".")])
    await refused(settings, executor, repo, tmp_path, r"'e'.*leaves the tree through other")


async def test_relative_symlinks_inside_the_tree_are_kept(settings, executor, tmp_path):
    repo = hostile_repo(tmp_path / "repo", [(FILE, "index.html", "hi\n"),
                                            (SYMLINK, "home", "index.html"),
                                            (SYMLINK, "self", ".")])
    dest = await export(settings, executor, repo, tmp_path)
    assert os.readlink(dest / "home") == "index.html" and os.readlink(dest / "self") == "."


@pytest.mark.parametrize("mode,target", [(FILE, "forged\n"), (SYMLINK, "/etc/ferry-owned")],
                         ids=["file", "symlink"])
async def test_ferry_release_marker_committed_by_the_repository_is_refused(
        mode, target, settings, executor, tmp_path):
    repo = hostile_repo(tmp_path / "repo", [(mode, ".ferry-release", target)])
    await refused(settings, executor, repo, tmp_path, r"\.ferry-release.*reserved")


async def test_demo_build_hook_replaces_a_revision_symlink_instead_of_writing_through_it(
        settings, executor, tmp_path):
    # An in-tree link is allowed; the hook must still write REVISION as its own file.
    repo = hostile_repo(tmp_path / "repo", [(FILE, "index.html", "<h1>app</h1>\n"),
                                            (SYMLINK, "REVISION", "index.html")])
    dest = await export(settings, executor, repo, tmp_path)
    await run_local_hook(DEMO_PROJECT["hooks"]["after_checkout"], dest,
                         {"FERRY_SHA": repo.sha, "FERRY_REF": "main"}, timeout_s=30,
                         line_max=4096, output_max=65536, on_line=lambda line: None)
    assert not (dest / "REVISION").is_symlink()
    assert (dest / "REVISION").read_text() == repo.sha + "\n"
    assert (dest / "index.html").read_text() == "<h1>app</h1>\n"


async def test_revision_symlink_to_an_absolute_path_is_refused_before_any_hook_runs(
        settings, executor, tmp_path, outside):
    repo = hostile_repo(tmp_path / "repo", [(SYMLINK, "REVISION", str(outside / "REVISION"))])
    await refused(settings, executor, repo, tmp_path, r"'REVISION'.*absolute symlink")
    assert not (outside / "REVISION").exists()


@pytest.mark.parametrize("name", ["new\nline.txt", "tab\there", "\x1b[31mred", "cr\rx"],
                         ids=["newline", "tab", "escape", "carriage-return"])
async def test_names_with_control_characters_are_refused(name, settings, executor, tmp_path):
    repo = hostile_repo(tmp_path / "repo", [(FILE, name, "x\n")])
    await refused(settings, executor, repo, tmp_path, "control character")


@pytest.mark.parametrize("name", [".git", ".GIT", ".Git"])
async def test_a_dot_git_directory_in_the_tree_is_refused(name, settings, executor, tmp_path):
    # A .git/config in the exported tree would configure (and run) git for a build hook.
    repo_path = tmp_path / "repo"
    hostile_repo(repo_path)
    config = tree(repo_path, [(FILE, "config", blob(repo_path, b"[core]\n\tfsmonitor=x\n"))])
    repo = hostile_repo(repo_path, root=tree(repo_path, [(TREE, name, config)]))
    await refused(settings, executor, repo, tmp_path, r"component is \.git")


async def test_pack_bomb_is_refused_before_anything_is_written(executor, tmp_path):
    """One 64 MiB blob of zeros (a few KB packed) referenced four times: 256 MiB."""
    repo_path = tmp_path / "repo"
    hostile_repo(repo_path)
    zeros = blob_of_zeros(repo_path, 64 * MiB)
    repo = hostile_repo(repo_path, root=tree(
        repo_path, [(FILE, f"zeros-{n}.bin", zeros) for n in range(4)]))
    settings = Settings(data_dir=tmp_path / "data", git_allow_file_urls=True,
                        repo_export_max_bytes=100 * MiB)
    await refused(settings, executor, repo, tmp_path,
                  r"more than 104857600 bytes \(quota repo_export_max_bytes\)")
    assert sum(p.stat().st_size for p in (tmp_path / "work").rglob("*") if p.is_file()) == 0


async def test_a_million_files_from_two_small_trees_are_refused_by_the_file_quota(
        settings, executor, tmp_path):
    repo_path = tmp_path / "repo"
    hostile_repo(repo_path)
    one = blob(repo_path, b"x")
    leaf = tree(repo_path, [(FILE, f"f{n}", one) for n in range(1000)])
    root = tree(repo_path, [(TREE, f"d{n}", leaf) for n in range(1000)])
    repo = hostile_repo(repo_path, root=root)
    await refused(settings, executor, repo, tmp_path,
                  r"more than 100000 files \(quota repo_export_max_files\)")


async def test_a_mirror_over_its_quota_is_refused_and_removed(executor, tmp_path):
    repo_path = tmp_path / "repo"
    hostile_repo(repo_path)
    noise = blob(repo_path, os.urandom(256 * 1024))        # does not compress
    repo = hostile_repo(repo_path, root=tree(repo_path, [(FILE, "noise", noise)]))
    settings = Settings(data_dir=tmp_path / "data", git_allow_file_urls=True,
                        git_mirror_max_bytes=64 * 1024)
    service = GitService(settings, executor)
    with pytest.raises(ContentRefused, match=r"quota git_mirror_max_bytes"):
        await service.sync({"name": "big", "repo_url": repo.url})
    assert not (settings.repos_dir / "big.git").exists()


# -- the packager: what a build hook made is checked again ---------------------------------

SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def built(tmp_path: Path) -> Path:
    root = tmp_path / "built"
    (root / "dist").mkdir(parents=True)
    (root / "dist" / "app.js").write_text("x\n")
    return root


@pytest.mark.parametrize("link,target", [
    ("shared", "/srv/shared"), ("dist/up", "../../outside"), (".ferry-release", "dist")],
    ids=["absolute", "dotdot", "marker-name"])
async def test_artifact_refuses_links_a_build_made_that_leave_or_shadow(
        link, target, built, settings, executor):
    (built / link).symlink_to(target)
    service = ArtifactService(settings, executor)
    with pytest.raises(ArtifactError, match="refusing to package"):
        await service.package({"name": "app"}, SHA, built)
    assert not list((settings.artifacts_dir / "app").glob("*.tar.gz"))


async def test_artifact_never_holds_a_ferry_release_member(built, settings, executor):
    (built / ".ferry-release").write_text("forged marker\n")
    with pytest.raises(ArtifactError, match=r"\.ferry-release.*reserved"):
        await ArtifactService(settings, executor).package({"name": "app"}, SHA, built)


async def test_artifact_unpacked_size_quota_is_named(built, tmp_path, executor):
    with open(built / "dist" / "zeros.bin", "wb") as out:
        out.truncate(8 * MiB)                      # compresses to almost nothing
    settings = Settings(data_dir=tmp_path / "data", artifact_max_unpacked_bytes=4 * MiB)
    with pytest.raises(ArtifactError, match=r"quota artifact_max_unpacked_bytes"):
        await ArtifactService(settings, executor).package({"name": "app"}, SHA, built)


async def test_packaged_symlinks_are_all_relative_and_inside(built, settings, executor):
    (built / "latest").symlink_to("dist")
    artifact = await ArtifactService(settings, executor).package({"name": "app"}, SHA, built)
    with tarfile.open(artifact.path, "r:gz") as tar:
        links = [m for m in tar.getmembers() if m.issym() or m.islnk()]
    assert [(m.name, m.linkname) for m in links] == [("latest", "dist")]


async def test_artifact_keeps_a_dot_git_the_build_made(built, settings, executor):
    (built / "vendor" / "lib" / ".git").mkdir(parents=True)
    (built / "vendor" / "lib" / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    artifact = await ArtifactService(settings, executor).package({"name": "app"}, SHA, built)
    with tarfile.open(artifact.path, "r:gz") as tar:
        assert "vendor/lib/.git/HEAD" in tar.getnames()
