"""Git: bare mirrors, ref → SHA, refs and commits, tree export.

GitPython runs every git process, only in the executor (never on the event loop). User
values never reach git as options: URLs and refs are validated, placed after `--` or
`--end-of-options`, and a ref is resolved once to a 40-hex SHA that is used from then on.
Every git process gets the same hardened environment and `-c` options (`services.git.runner`) and
is killed, with its children, after `settings.git_timeout_s`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import hashlib
import logging
import os
import pathlib
import re
import shutil
import tarfile
import tempfile
import time
import uuid
from datetime import UTC, datetime

from services.git.refs import (
    SCHEME,
    SHA_PREFIX,
    redact_url,
    validate_ref,
    validate_repo_url,
)
from services.git.runner import GitError, GitRunner, ensure_off_loop
from services.settings import Settings

log = logging.getLogger("ferry.git")

SHA_RE = re.compile(r"[0-9a-f]{40}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
_FIELD, _RECORD = "\x1f", "\x1e"


def _iso(timestamp: str) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class GitService:
    """Bare mirrors under settings.repos_dir, one sync at a time per project."""

    def __init__(self, settings: Settings, executor: concurrent.futures.Executor) -> None:
        self.settings = settings
        self._executor = executor
        self._git = GitRunner(settings)
        self._locks: dict[str, asyncio.Lock] = {}

    # -- async API ------------------------------------------------------------------------

    async def sync(self, project: dict) -> None:
        """Clone the mirror the first time, then fetch --prune branches and tags."""
        name, url = self._name(project), self._url(project)
        started = time.monotonic()
        async with self._locks.setdefault(name, asyncio.Lock()):
            await self._call(self._sync_blocking, self._mirror(name), url)
        log.info("git: synced %s from %s in %.0f ms", name, redact_url(url),
                 (time.monotonic() - started) * 1000)

    async def resolve(self, project: dict, ref: str) -> str:
        """The 40-hex commit SHA of a branch, tag (annotated tags peeled), SHA or prefix."""
        validate_ref(ref)
        return await self._call(self._resolve_blocking, await self._ensure(project), ref)

    async def list_refs(self, project: dict) -> dict:
        """{"branches": [...], "tags": [...]}, newest first, each capped at git_refs_limit."""
        mirror = await self._ensure(project)
        return {"branches": await self._call(self._refs_blocking, mirror, "refs/heads/"),
                "tags": await self._call(self._refs_blocking, mirror, "refs/tags/")}

    async def recent_commits(self, project: dict, ref: str | None = None,
                             limit: int | None = None) -> list[dict]:
        """[{sha, author, date, subject}] reachable from ref (default: the remote's HEAD)."""
        if ref is not None:
            validate_ref(ref)
        mirror = await self._ensure(project)
        return await self._call(self._recent_blocking, mirror, ref or "HEAD", self._limit(limit))

    async def commits_between(self, project: dict, from_sha: str | None, to_sha: str,
                              limit: int | None = None) -> list[dict]:
        """The commits from_sha..to_sha, newest first: what deploying to_sha would bring."""
        if from_sha is None:
            return await self.recent_commits(project, to_sha, limit)
        for sha in (from_sha, to_sha):
            self._sha(sha)
        mirror = await self._ensure(project)
        return await self._call(self._between_blocking, mirror, from_sha, to_sha,
                                self._limit(limit))

    async def export_tree(self, project: dict, sha: str, dest: pathlib.Path) -> None:
        """The tree at `sha` into `dest` (created; must be empty); submodules when enabled."""
        self._sha(sha)
        mirror = await self._ensure(project)
        if not project.get("submodules"):
            await self._call(self._export_blocking, mirror, sha, pathlib.Path(dest))
            return
        name = self._name(project)
        async with self._locks.setdefault(name, asyncio.Lock()):
            await self._call(self._export_blocking, mirror, sha, pathlib.Path(dest),
                             name, self._url(project))

    # -- helpers on the loop ----------------------------------------------------------------

    async def _call(self, function, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _ensure(self, project: dict) -> pathlib.Path:
        mirror = self._mirror(self._name(project))
        if not mirror.exists():
            await self.sync(project)
        return mirror

    def _name(self, project: dict) -> str:
        name = project.get("name")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
            raise GitError(f"project name {name!r} cannot name a mirror directory")
        return name

    def _url(self, project: dict) -> str:
        try:
            return validate_repo_url(project.get("repo_url") or "",
                                     allow_file=self.settings.git_allow_file_urls)
        except ValueError as error:
            raise GitError(f"repository URL refused: {error}") from None

    def _mirror(self, name: str) -> pathlib.Path:
        return self.settings.repos_dir / f"{name}.git"

    def _limit(self, limit: int | None) -> int:
        cap = self.settings.git_commits_limit
        return cap if limit is None else max(1, min(int(limit), cap))

    @staticmethod
    def _sha(sha: str) -> str:
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            raise ValueError(f"expected a 40-hex commit SHA, got {sha!r}")
        return sha

    # -- blocking work (executor only) ----------------------------------------------------

    def _sync_blocking(self, mirror: pathlib.Path, url: str) -> None:
        ensure_off_loop()
        if mirror.exists():
            self._git(["fetch", "--prune", "--no-tags", "--no-recurse-submodules", "--quiet",
                       "--", url, *_REFSPECS], cwd=mirror, git_dir=mirror, url=url)
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
        for stale in mirror.parent.glob(f".{mirror.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = mirror.parent / f".{mirror.name}.{uuid.uuid4().hex}.tmp"
        try:
            self._git(["clone", "--bare", "--quiet", "--no-recurse-submodules", "--",
                       url, str(tmp)], cwd=mirror.parent, url=url)
            # Later fetches name the URL themselves: keep no credentials on disk.
            self._git(["remote", "remove", "origin"], cwd=tmp, git_dir=tmp)
            tmp.rename(mirror)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _resolve_blocking(self, mirror: pathlib.Path, ref: str) -> str:
        ensure_off_loop()
        if ref == "HEAD" or ref.startswith("refs/"):
            candidates = [ref]
        else:
            candidates = [f"refs/heads/{ref}", f"refs/tags/{ref}"]
            if SHA_PREFIX.fullmatch(ref):
                candidates.append(ref.lower())
        for candidate in candidates:
            status, out = self._git(
                ["rev-parse", "--verify", "--quiet", "--end-of-options", f"{candidate}^{{commit}}"],
                cwd=mirror, git_dir=mirror, check=False)
            if status == 0 and SHA_RE.fullmatch(out.strip()):
                return out.strip()
        raise GitError(f"unknown ref {ref!r}")

    def _refs_blocking(self, mirror: pathlib.Path, prefix: str) -> list[dict]:
        ensure_off_loop()
        fields = ["refname:lstrip=2", "objecttype", "objectname", "authorname",
                  "contents:subject", "*objecttype", "*objectname", "*authorname",
                  "*contents:subject", "creatordate:unix"]
        fmt = "%1f".join(f"%({field})" for field in fields) + "%1e"
        _, out = self._git(["for-each-ref", "--sort=-creatordate",
                            f"--count={self.settings.git_refs_limit}", f"--format={fmt}", prefix],
                           cwd=mirror, git_dir=mirror)
        refs = []
        for record in out.split(_RECORD):
            parts = record.lstrip("\n").split(_FIELD)
            if len(parts) != len(fields):
                continue
            name, kind, sha, author, subject, peeled_kind, peeled, p_author, p_subject, when = parts
            if kind == "tag" and peeled_kind == "commit":
                sha, author, subject = peeled, p_author, p_subject
            elif kind != "commit":
                continue
            refs.append({"name": name, "sha": sha, "subject": subject, "author": author,
                         "date": _iso(when or "0")})
        return refs

    def _recent_blocking(self, mirror: pathlib.Path, ref: str, limit: int) -> list[dict]:
        ensure_off_loop()
        return self._log(mirror, self._resolve_blocking(mirror, ref), limit)

    def _between_blocking(self, mirror: pathlib.Path, from_sha: str, to_sha: str,
                          limit: int) -> list[dict]:
        ensure_off_loop()
        for sha in (from_sha, to_sha):
            status, _ = self._git(["cat-file", "-e", f"{sha}^{{commit}}"], cwd=mirror,
                                  git_dir=mirror, check=False)
            if status != 0:
                raise GitError(f"commit {sha[:12]} is not in the repository")
        return self._log(mirror, f"{from_sha}..{to_sha}", limit)

    def _log(self, mirror: pathlib.Path, revisions: str, limit: int) -> list[dict]:
        _, out = self._git(["log", f"--max-count={limit}",
                            "--format=%H%x1f%an%x1f%ct%x1f%s%x1e", revisions, "--"],
                           cwd=mirror, git_dir=mirror)
        commits = []
        for record in out.split(_RECORD):
            parts = record.lstrip("\n").split(_FIELD)
            if len(parts) == 4:
                sha, author, when, subject = parts
                commits.append({"sha": sha, "author": author, "date": _iso(when),
                                "subject": subject})
        return commits

    def _export_blocking(self, mirror: pathlib.Path, sha: str, dest: pathlib.Path,
                         name: str | None = None, url: str | None = None) -> None:
        ensure_off_loop()
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise GitError(f"export destination {dest} is not empty")
        self._archive(mirror, sha, dest)
        if name is not None and url is not None:
            self._export_submodules(mirror, sha, dest, name, url)

    def _archive(self, mirror: pathlib.Path, sha: str, dest: pathlib.Path) -> None:
        """git archive into a spool file, then a checked extraction into dest."""
        with tempfile.TemporaryFile(dir=dest.parent) as spool:
            self._git(["archive", "--format=tar", sha], cwd=mirror, git_dir=mirror,
                      output_stream=spool)
            spool.seek(0)
            try:
                with tarfile.open(fileobj=spool, mode="r:") as tar:
                    tar.extractall(dest, filter=_checked_member)  # noqa: S202 - filtered
                    for link in (m for m in tar.getmembers() if m.issym()):
                        # tarfile leaves a symlink's own mtime at "now": make it the commit's
                        os.utime(dest / link.name, (link.mtime, link.mtime),
                                 follow_symlinks=False)
            except tarfile.TarError as error:
                raise GitError(f"exporting {sha[:12]} failed: {error}") from None

    def _export_submodules(self, mirror: pathlib.Path, sha: str, dest: pathlib.Path,
                           name: str, url: str) -> None:
        """One level of submodules, each from its own mirror, validated like a project URL."""
        _, tree = self._git(["ls-tree", "-r", "-z", "--full-tree", sha], cwd=mirror,
                            git_dir=mirror)
        links = {}
        for entry in tree.split("\0"):
            meta, _, path = entry.partition("\t")
            if meta.startswith("160000 commit "):
                links[path] = meta.split()[2]
        if not links:
            return
        _, config = self._git(["config", "-z", "--no-includes", "--blob", f"{sha}:.gitmodules",
                               "--list"], cwd=mirror, git_dir=mirror)
        entries = dict(item.partition("\n")[::2] for item in config.split("\0") if item)
        urls = {entries[key]: entries.get(key[:-len(".path")] + ".url")
                for key in entries if key.startswith("submodule.") and key.endswith(".path")}
        for path, commit in sorted(links.items()):
            target = dest / path
            if ".." in pathlib.PurePosixPath(path).parts or not target.resolve().is_relative_to(
                    dest.resolve()):
                raise GitError(f"submodule path {path!r} is not inside the tree")
            sub_url = _submodule_url(url, urls.get(path), path)
            try:
                validate_repo_url(sub_url, allow_file=self.settings.git_allow_file_urls)
            except ValueError as error:
                raise GitError(f"submodule {path!r}: {error}") from None
            key = hashlib.sha256(sub_url.encode()).hexdigest()[:16]
            sub_mirror = self.settings.repos_dir / f"{name}.modules" / f"{key}.git"
            self._sync_blocking(sub_mirror, sub_url)
            target.mkdir(parents=True, exist_ok=True)
            if any(target.iterdir()):
                raise GitError(f"submodule path {path!r} is not empty in the tree")
            self._archive(sub_mirror, commit, target)


def _submodule_url(base: str, url: str | None, path: str) -> str:
    """A submodule URL from .gitmodules, relative ones (./, ../) resolved against base."""
    if not url:
        raise GitError(f"submodule {path!r} has no URL in .gitmodules")
    if not url.startswith(("./", "../")):
        return url
    scheme = SCHEME.match(base)
    if scheme:
        floor = base.find("/", scheme.end())
    elif base.startswith("/"):
        floor = 0
    else:
        floor = base.find(":") + 1
    base, rel = base.rstrip("/"), url
    while rel.startswith(("./", "../")):
        if rel.startswith("./"):
            rel = rel[2:]
            continue
        rel = rel[3:]
        cut = base.rfind("/")
        if floor < 0 or cut < floor:
            raise GitError(f"submodule {path!r}: relative URL {url!r} leaves the repository host")
        base = base[:cut]
    return f"{base}/{rel}" if not base.endswith(":") else f"{base}{rel}"


def _checked_member(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Only relative files, directories and symlinks (kept as links), never through one."""
    path = pathlib.PurePosixPath(member.name)
    if path.is_absolute() or ".." in path.parts or not member.name.strip("/."):
        raise GitError(f"refusing archive member {member.name!r}: unsafe path")
    if not (member.isfile() or member.isdir() or member.issym()):
        raise GitError(f"refusing archive member {member.name!r}: not a file, dir or symlink")
    return tarfile.tar_filter(member, dest)
