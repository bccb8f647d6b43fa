"""GitService against real repositories made with the git CLI; no mocks."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.git.mirrors import SHA_RE, GitError, GitService
from services.git.refs import redact_url, validate_ref, validate_repo_url
from services.settings import Settings
from tests.gitrepo import RepoInfo, commit, git, make_repo


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(2, thread_name_prefix="test-git") as pool:
        yield pool


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Overrides the shared fixture: git needs no database."""
    return Settings(data_dir=tmp_path / "data", git_allow_file_urls=True, git_timeout_s=30)


@pytest.fixture
def repo(tmp_path: Path) -> RepoInfo:
    return make_repo(tmp_path / "origin")


@pytest.fixture
def project(repo: RepoInfo) -> dict:
    return {"name": "demo", "repo_url": repo.url}


@pytest.fixture
def service(settings: Settings, executor: ThreadPoolExecutor) -> GitService:
    return GitService(settings, executor)


@pytest.fixture
async def synced(service: GitService, project: dict) -> GitService:
    await service.sync(project)
    return service


# -- resolve ---------------------------------------------------------------------------------

async def test_resolve_branch_gives_commit_sha(synced, project, repo):
    assert await synced.resolve(project, "main") == repo.branches["main"]
    assert await synced.resolve(project, "feature/x") == repo.branches["feature/x"]


async def test_resolve_lightweight_tag_gives_commit_sha(synced, project, repo):
    assert await synced.resolve(project, "v1.0") == repo.tags["v1.0"]


async def test_resolve_annotated_tag_gives_commit_not_tag_object(synced, project, repo):
    tag_object = git(repo.path, "rev-parse", "v2.0")
    sha = await synced.resolve(project, "v2.0")
    assert sha == repo.tags["v2.0"]
    assert sha != tag_object


async def test_resolve_full_sha(synced, project, repo):
    assert await synced.resolve(project, repo.commits[0]) == repo.commits[0]


async def test_resolve_short_sha(synced, project, repo):
    assert await synced.resolve(project, repo.commits[1][:7]) == repo.commits[1]


async def test_resolve_unknown_ref_raises_git_error(synced, project):
    with pytest.raises(GitError, match="unknown ref 'no-such-branch'"):
        await synced.resolve(project, "no-such-branch")


async def test_resolve_head_is_the_default_branch(synced, project, repo):
    assert await synced.resolve(project, "HEAD") == repo.branches["main"]


async def test_legal_ref_with_shell_metacharacters_resolves_without_effect(
        service, project, repo, tmp_path, monkeypatch):
    weird = "fix/$(touch${IFS}pwned);x&y|z`touch${IFS}pwned`"
    git(repo.path, "check-ref-format", "--allow-onelevel", weird)   # git accepts it
    git(repo.path, "branch", weird, repo.commits[0])
    monkeypatch.chdir(tmp_path)
    await service.sync(project)
    assert await service.resolve(project, weird) == repo.commits[0]
    assert not list(tmp_path.rglob("pwned"))


# -- validation ------------------------------------------------------------------------------

@pytest.mark.parametrize("ref", [
    "--upload-pack=x", "-x", "a..b", "a b", "$(touch pwned)", "", "main@{1}", "x.lock",
    "a/", "/a", "a//b", "HEAD~1", "a^", "a:b", "a?", "a*", "a[", "a\\b", ".hidden", "a.",
    "@", "tab\there", "x" * 256])
def test_validate_ref_rejects_malformed_or_option_like_refs(ref):
    with pytest.raises(ValueError):
        validate_ref(ref)


@pytest.mark.parametrize("ref", [
    "main", "feature/x", "v1.0", "fix/a&b", "feature/$x;y", "a|b`c", "x<y>", "HEAD",
    "é/x", "a=b", "+x", "#x", "a@b", "deadbeef", "0123456789abcdef0123456789abcdef01234567"])
def test_validate_ref_accepts_what_git_check_ref_format_accepts(ref, tmp_path):
    subprocess.run(["git", "check-ref-format", "--allow-onelevel", ref], check=True)
    assert validate_ref(ref) == ref


@pytest.mark.parametrize("url", [
    "-oProxyCommand=x", "ext::sh -c x", "fd::17", "http://x/y.git", "git://x/y.git",
    "ssh://-oProxyCommand=x/y", "ssh://host", "https://x/a b", "https:///path",
    "user@-host:x", "host:-x", "relative/path", "ftp://x/y", "https://x\n/y",
    "https://host:notaport/x"])
def test_validate_repo_url_rejects_dangerous_urls(url):
    with pytest.raises(ValueError):
        validate_repo_url(url, allow_file=True)


@pytest.mark.parametrize("url", ["file:///srv/repo.git", "/srv/repo.git"])
def test_validate_repo_url_rejects_local_urls_unless_allowed(url):
    with pytest.raises(ValueError, match="not allowed"):
        validate_repo_url(url, allow_file=False)
    assert validate_repo_url(url, allow_file=True) == url


@pytest.mark.parametrize("url", [
    "https://github.com/org/app.git", "https://user:t0ken@git.example.com/org/app.git",
    "ssh://git@git.example.com:2222/org/app.git", "git@github.com:org/app.git",
    "deploy@[::1]:srv/app.git"])
def test_validate_repo_url_accepts_https_ssh_and_scp_like(url):
    assert validate_repo_url(url, allow_file=False) == url


def test_redact_url_strips_credentials():
    assert redact_url("https://user:s3cret@host/r.git") == "https://***@host/r.git"
    assert redact_url("fatal: 'https://tok@h/x' failed") == "fatal: 'https://***@h/x' failed"
    assert redact_url("git@github.com:org/app.git") == "git@github.com:org/app.git"


# -- listing ---------------------------------------------------------------------------------

async def test_list_refs_gives_branches_and_tags_newest_first(synced, project, repo):
    refs = await synced.list_refs(project)
    assert [b["name"] for b in refs["branches"]] == ["feature/x", "main"]
    assert [t["name"] for t in refs["tags"]] == ["v2.0", "v1.0"]
    main = refs["branches"][1]
    assert main == {"name": "main", "sha": repo.branches["main"], "subject": "Third commit",
                    "author": "Ada Tester", "date": "2023-11-14T22:15:20Z"}
    assert refs["tags"][0]["sha"] == repo.tags["v2.0"]
    assert refs["tags"][0]["subject"] == "Second: script and link"


async def test_list_refs_capped_at_refs_limit(settings, executor, project):
    service = GitService(settings.replace(git_refs_limit=1), executor)
    await service.sync(project)
    refs = await service.list_refs(project)
    assert [b["name"] for b in refs["branches"]] == ["feature/x"]
    assert len(refs["tags"]) == 1


async def test_recent_commits_fields_with_iso_utc_dates(synced, project, repo):
    commits = await synced.recent_commits(project)
    assert [c["sha"] for c in commits] == repo.commits[::-1]
    assert commits[-1] == {"sha": repo.commits[0], "author": "Ada Tester",
                           "date": "2023-11-14T22:13:20Z", "subject": "First commit"}


async def test_recent_commits_of_ref_with_limit(synced, project, repo):
    commits = await synced.recent_commits(project, "feature/x", limit=2)
    assert [c["sha"] for c in commits] == [repo.branches["feature/x"], repo.commits[1]]


async def test_commits_between_gives_what_a_deploy_brings(synced, project, repo):
    commits = await synced.commits_between(project, repo.commits[0], repo.commits[2])
    assert [c["sha"] for c in commits] == [repo.commits[2], repo.commits[1]]


async def test_commits_between_without_base_gives_recent_commits(synced, project, repo):
    commits = await synced.commits_between(project, None, repo.commits[1])
    assert [c["sha"] for c in commits] == [repo.commits[1], repo.commits[0]]


async def test_commits_between_unknown_commit_raises_git_error(synced, project, repo):
    with pytest.raises(GitError, match="not in the repository"):
        await synced.commits_between(project, "0" * 40, repo.commits[2])


# -- sync ------------------------------------------------------------------------------------

async def test_sync_fetches_new_commits_and_prunes_deleted_branches(synced, project, repo):
    new = commit(repo.path, {"new.txt": "n\n"}, "Fourth commit")
    git(repo.path, "branch", "-D", "feature/x")
    await synced.sync(project)
    assert await synced.resolve(project, "main") == new
    with pytest.raises(GitError, match="unknown ref"):
        await synced.resolve(project, "feature/x")


async def test_concurrent_syncs_of_one_project_take_turns(service, project, repo):
    await asyncio.gather(service.sync(project), service.sync(project), service.sync(project))
    assert await service.resolve(project, "main") == repo.branches["main"]


async def test_mirror_keeps_no_remote_url(synced, settings):
    config = (settings.repos_dir / "demo.git" / "config").read_text()
    assert "url =" not in config


async def test_hooks_never_run_in_the_mirror(synced, project, repo, settings, tmp_path):
    marker = tmp_path / "hook-ran"
    hook = settings.repos_dir / "demo.git" / "hooks" / "reference-transaction"
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    commit(repo.path, {"more.txt": "m\n"}, "More")
    await synced.sync(project)
    assert not marker.exists()


async def test_every_git_process_gets_the_hardened_environment(service, settings):
    settings.repos_dir.mkdir(parents=True)
    _, env = await asyncio.to_thread(
        service._git, ["-c", "alias.showenv=!env", "showenv"], cwd=settings.repos_dir)
    values = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
    assert values["GIT_ALLOW_PROTOCOL"] == "https:ssh:file"
    assert values["GIT_TERMINAL_PROMPT"] == "0"
    assert "-o BatchMode=yes" in values["GIT_SSH_COMMAND"]
    assert values["GIT_HTTP_LOW_SPEED_LIMIT"] == str(settings.git_low_speed_limit_bps)
    assert values["GIT_HTTP_LOW_SPEED_TIME"] == str(settings.git_low_speed_time_s)
    _, hooks = await asyncio.to_thread(
        service._git, ["config", "core.hooksPath"], cwd=settings.repos_dir)
    assert hooks.strip() == "/dev/null"


async def test_file_transport_refused_by_git_when_not_allowed(tmp_path, executor, repo):
    settings = Settings(data_dir=tmp_path / "data", git_allow_file_urls=False)
    service = GitService(settings, executor)
    with pytest.raises(GitError, match="not allowed"):
        await asyncio.to_thread(service._git, ["clone", "--bare", "--", repo.url,
                                               str(tmp_path / "copy")], cwd=tmp_path)
    with pytest.raises(GitError, match="file:// repository URLs are not allowed"):
        await service.sync({"name": "demo", "repo_url": repo.url})


# -- export ----------------------------------------------------------------------------------

async def test_export_tree_writes_the_files_at_that_sha(synced, project, repo, tmp_path):
    await synced.export_tree(project, repo.commits[0], tmp_path / "one")
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["README.md", "app.py"]
    assert (tmp_path / "one" / "app.py").read_text() == "VERSION = 1\n"
    await synced.export_tree(project, repo.commits[1], tmp_path / "two")
    assert (tmp_path / "two" / "app.py").read_text() == "VERSION = 2\n"
    assert os.access(tmp_path / "two" / "bin" / "run.sh", os.X_OK)
    assert os.readlink(tmp_path / "two" / "current-readme") == "README.md"


async def test_export_tree_refuses_a_ref_name_instead_of_a_sha(synced, project, tmp_path):
    with pytest.raises(ValueError, match="40-hex"):
        await synced.export_tree(project, "main", tmp_path / "tree")


@pytest.fixture
def repo_with_submodule(tmp_path: Path, repo: RepoInfo) -> tuple[RepoInfo, str]:
    lib = tmp_path / "libsrc"
    lib.mkdir()
    git(lib, "init", "-q", "-b", "main")
    commit(lib, {"lib.txt": "library\n"}, "Library")
    git(repo.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        lib.resolve().as_uri(), "vendor/lib")
    return repo, commit(repo.path, {}, "Add submodule")


async def test_export_tree_leaves_submodules_out_unless_enabled(
        service, project, repo_with_submodule, tmp_path):
    _, sha = repo_with_submodule
    await service.export_tree(project, sha, tmp_path / "tree")
    assert (tmp_path / "tree" / ".gitmodules").exists()
    assert not (tmp_path / "tree" / "vendor" / "lib" / "lib.txt").exists()


async def test_export_tree_includes_submodules_when_enabled(
        service, project, repo_with_submodule, tmp_path):
    _, sha = repo_with_submodule
    await service.export_tree({**project, "submodules": True}, sha, tmp_path / "tree")
    assert (tmp_path / "tree" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"


def _set_submodule_url(repo: RepoInfo, url: str) -> str:
    git(repo.path, "config", "--file", ".gitmodules", "submodule.vendor/lib.url", url)
    return commit(repo.path, {}, f"Submodule URL {url}")


async def test_export_tree_resolves_relative_submodule_urls(
        service, project, repo_with_submodule, tmp_path):
    repo, _ = repo_with_submodule
    sha = _set_submodule_url(repo, "../libsrc")
    await service.export_tree({**project, "submodules": True}, sha, tmp_path / "tree")
    assert (tmp_path / "tree" / "vendor" / "lib" / "lib.txt").read_text() == "library\n"


@pytest.mark.parametrize("url", ["ext::sh", "http://example.com/lib.git"])
async def test_export_tree_refuses_submodule_urls_ferry_refuses(
        url, service, project, repo_with_submodule, tmp_path):
    repo, _ = repo_with_submodule
    sha = _set_submodule_url(repo, url)
    with pytest.raises(GitError, match=r"submodule 'vendor/lib'.*not allowed"):
        await service.export_tree({**project, "submodules": True}, sha, tmp_path / "tree")


# -- timeouts, credentials, the loop ---------------------------------------------------------

@pytest.fixture
async def silent_server() -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 that accepts and never says a word."""
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()          # until the client is gone
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.mark.parametrize("scheme", ["https", "ssh"])
async def test_hung_remote_is_killed_within_the_timeout(scheme, silent_server, tmp_path,
                                                        executor):
    """https stalls in the TLS handshake (the connect probe gives up), ssh in the banner
    (git is killed at git_timeout_s); both say only that the remote was not reached."""
    settings = Settings(data_dir=tmp_path / "data", git_timeout_s=2, git_low_speed_time_s=60,
                        ssh_connect_timeout_s=60, git_connect_timeout_s=1,
                        outbound_allow_private=True)
    service = GitService(settings, executor)
    project = {"name": "hung", "repo_url": f"{scheme}://git@127.0.0.1:{silent_server}/r.git"}
    with pytest.raises(GitError, match="could not reach the repository"):
        await asyncio.wait_for(service.sync(project), 60)
    assert not settings.repos_dir.exists() or not list(settings.repos_dir.iterdir())


async def test_credentials_never_appear_in_git_errors(tmp_path, executor, caplog):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]          # closed again: connections are refused
    service = GitService(Settings(data_dir=tmp_path / "data", outbound_allow_private=True),
                         executor)
    url = f"https://ferry-user:s3cr3t-t0ken@127.0.0.1:{port}/org/r.git"
    with pytest.raises(GitError) as raised:
        await service.sync({"name": "private", "repo_url": url})
    text = str(raised.value)
    assert "could not reach the repository" in text
    assert "s3cr3t-t0ken" not in text and "ferry-user" not in text
    assert "s3cr3t-t0ken" not in caplog.text
    assert raised.value.__cause__ is None and raised.value.__context__ is None


async def test_blocking_function_called_on_the_loop_raises(synced, settings, project):
    with pytest.raises(RuntimeError, match="event loop"):
        synced._resolve_blocking(settings.repos_dir / "demo.git", "main")
    with pytest.raises(RuntimeError, match="event loop"):
        synced._git(["--version"], cwd=settings.repos_dir)
    assert SHA_RE.fullmatch(await synced.resolve(project, "main"))
