"""Git: bare mirrors, ref → SHA, refs and commits, tree export.

GitPython runs every git process, only in git's own executor (never on the event loop).
User values never reach git as options: URLs and refs are validated, placed after `--` or
`--end-of-options`, and a ref is resolved once to a 40-hex SHA that is used from then on.
Every git process gets the same hardened environment and `-c` options (`services.git.runner`)
and is killed, with its children, after `settings.git_timeout_s`. Network work is admitted by
`services.git.network` (address policy, limits, connect probe); reading refs and commits
never touches the network: they come from the mirror, which a release or an explicit
refresh updates. Exports follow `services.git.export` (quotas, hostile content).
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
import time
import uuid
from datetime import UTC, datetime

from services.git import export
from services.git.network import Pin, RemoteGate
from services.git.refs import (
    SHA_PREFIX,
    redact_url,
    submodule_url,
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
_FETCHED = "ferry-fetched"        # in the mirror: its mtime is the last successful fetch


def _iso(timestamp: str | float) -> str:
    return datetime.fromtimestamp(int(float(timestamp)), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class NotFetched(GitError):
    """The project's mirror does not exist yet: a refresh (or a release) fetches it."""


class GitService:
    """Bare mirrors under settings.repos_dir, one sync at a time per project."""

    def __init__(self, settings: Settings, executor: concurrent.futures.Executor) -> None:
        self.settings = settings
        self._executor = executor
        self._git = GitRunner(settings)
        self.gate = RemoteGate(settings, self._git.ssh_command)
        self._locks: dict[str, asyncio.Lock] = {}
        self._last_fetch: dict[str, float] = {}

    # -- async API ------------------------------------------------------------------------

    async def check_url(self, url: str) -> None:
        """The address policy for a URL being saved (GitError when refused)."""
        await self.gate.check(url)

    async def sync(self, project: dict, min_interval_s: float = 0.0) -> bool:
        """Clone the mirror the first time, then fetch --prune branches and tags; skipped
        (False) when the last fetch is less than `min_interval_s` old."""
        name, url = self._name(project), self._url(project)
        started = time.monotonic()
        async with self._locks.setdefault(name, asyncio.Lock()):
            last = self._last_fetch.get(name)
            if last is not None and started - last < min_interval_s:
                return False
            await self._fetch(self._mirror(name), url)
            self._last_fetch[name] = time.monotonic()
        log.info("git: synced %s from %s in %.0f ms", name, redact_url(url),
                 (time.monotonic() - started) * 1000)
        return True

    async def refresh(self, project: dict) -> bool:
        """sync() at most once per git_refresh_min_interval_s: what a user's refresh may
        cost; concurrent refreshes of one project share one fetch."""
        return await self.sync(project, self.settings.git_refresh_min_interval_s)

    async def mirror_state(self, project: dict) -> dict:
        """{"fetched_at": ISO time or None, "stale": bool}, from the mirror on disk."""
        stamp = self._mirror(self._name(project)) / _FETCHED
        try:
            when = (await self._call(os.stat, stamp)).st_mtime
        except OSError:
            return {"fetched_at": None, "stale": True}
        return {"fetched_at": _iso(when),
                "stale": time.time() - when > self.settings.git_refs_stale_s}

    async def resolve(self, project: dict, ref: str) -> str:
        """The 40-hex commit SHA of a branch, tag (annotated tags peeled), SHA or prefix,
        in the mirror as last fetched."""
        validate_ref(ref)
        return await self._call(self._resolve_blocking, await self._existing(project), ref)

    async def list_refs(self, project: dict) -> dict:
        """{"branches": [...], "tags": [...]}, newest first, each capped at git_refs_limit;
        empty lists when the mirror was never fetched."""
        try:
            mirror = await self._existing(project)
        except NotFetched:
            return {"branches": [], "tags": []}
        return {"branches": await self._call(self._refs_blocking, mirror, "refs/heads/"),
                "tags": await self._call(self._refs_blocking, mirror, "refs/tags/")}

    async def recent_commits(self, project: dict, ref: str | None = None,
                             limit: int | None = None) -> list[dict]:
        """[{sha, author, date, subject}] reachable from ref (default: the remote's HEAD)."""
        if ref is not None:
            validate_ref(ref)
        mirror = await self._existing(project)
        return await self._call(self._recent_blocking, mirror, ref or "HEAD", self._limit(limit))

    async def commits_between(self, project: dict, from_sha: str | None, to_sha: str,
                              limit: int | None = None) -> list[dict]:
        """The commits from_sha..to_sha, newest first: what deploying to_sha would bring."""
        if from_sha is None:
            return await self.recent_commits(project, to_sha, limit)
        for sha in (from_sha, to_sha):
            self._sha(sha)
        mirror = await self._existing(project)
        return await self._call(self._between_blocking, mirror, from_sha, to_sha,
                                self._limit(limit))

    async def commits_shipped(self, project: dict, from_sha: str | None, to_sha: str,
                              limit: int) -> tuple[list[dict], int]:
        """Up to `limit` commits of from_sha..to_sha (all of to_sha's history when
        from_sha is None), newest first, and how many there are in all."""
        for sha in (from_sha, to_sha):
            if sha is not None:
                self._sha(sha)
        mirror = await self._existing(project)
        return await self._call(self._shipped_blocking, mirror, from_sha, to_sha,
                                max(1, int(limit)))

    async def export_tree(self, project: dict, sha: str, dest: pathlib.Path) -> None:
        """The tree at `sha` into `dest` (created; must be empty); submodules when enabled.
        Quotas and content rules of services.git.export; on refusal dest is left empty."""
        self._sha(sha)
        dest = pathlib.Path(dest)
        mirror = await self._ensure(project)
        budget = export.Budget(self.settings.repo_export_max_files,
                               self.settings.repo_export_max_bytes)
        try:
            links = await self._call(self._export_blocking, mirror, sha, dest, budget)
            if project.get("submodules") and links:
                await self._export_submodules(project, mirror, sha, dest, links, budget)
            await self._call(export.check_tree, dest)
        except BaseException:
            await self._call(_empty, dest)
            raise

    # -- helpers on the loop ----------------------------------------------------------------

    async def _call(self, function, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(function, *args))

    async def _fetch(self, mirror: pathlib.Path, url: str) -> None:
        async with self.gate.admit(url) as pin:
            await self._call(self._sync_blocking, mirror, url, pin)

    async def _ensure(self, project: dict) -> pathlib.Path:
        mirror = self._mirror(self._name(project))
        if not mirror.exists():
            await self.sync(project)
        return mirror

    async def _existing(self, project: dict) -> pathlib.Path:
        mirror = self._mirror(self._name(project))
        if not mirror.exists():
            raise NotFetched(f"the repository of {project['name']!r} has not been fetched "
                             "yet: refresh it (POST /api/projects/<name>/refresh)")
        return mirror

    async def _export_submodules(self, project: dict, mirror: pathlib.Path, sha: str,
                                 dest: pathlib.Path, links: dict[str, str],
                                 budget: export.Budget) -> None:
        """One level of submodules, each from its own mirror, its URL validated and
        admitted like a project URL."""
        name, url = self._name(project), self._url(project)
        urls = await self._call(self._submodule_urls, mirror, sha)
        async with self._locks.setdefault(name, asyncio.Lock()):
            for path, commit in sorted(links.items()):
                try:
                    sub_url = submodule_url(url, urls.get(path), path)
                    validate_repo_url(sub_url, allow_file=self.settings.git_allow_file_urls)
                except ValueError as error:
                    raise GitError(f"submodule {path!r}: {error}") from None
                key = hashlib.sha256(sub_url.encode()).hexdigest()[:16]
                sub_mirror = self.settings.repos_dir / f"{name}.modules" / f"{key}.git"
                await self._fetch(sub_mirror, sub_url)
                await self._call(self._export_submodule_blocking, sub_mirror, commit, dest,
                                 path, budget)

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

    def _sync_blocking(self, mirror: pathlib.Path, url: str, pin: Pin) -> None:
        ensure_off_loop()
        network = {"url": url, "options": pin.options, "env": pin.env}
        if mirror.exists():
            self._git(["fetch", "--prune", "--no-tags", "--no-recurse-submodules", "--quiet",
                       "--", url, *_REFSPECS], cwd=mirror, git_dir=mirror, **network)
            self._check_mirror_size(mirror, remove=mirror)
            (mirror / _FETCHED).touch()
            return
        mirror.parent.mkdir(parents=True, exist_ok=True)
        for stale in mirror.parent.glob(f".{mirror.name}.*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = mirror.parent / f".{mirror.name}.{uuid.uuid4().hex}.tmp"
        try:
            self._git(["clone", "--bare", "--quiet", "--no-recurse-submodules", "--",
                       url, str(tmp)], cwd=mirror.parent, **network)
            # Later fetches name the URL themselves: keep no credentials on disk.
            self._git(["remote", "remove", "origin"], cwd=tmp, git_dir=tmp)
            self._check_mirror_size(tmp, remove=tmp)
            (tmp / _FETCHED).touch()
            tmp.rename(mirror)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _check_mirror_size(self, mirror: pathlib.Path, remove: pathlib.Path) -> None:
        limit = self.settings.git_mirror_max_bytes
        size = 0
        for directory, _, files in os.walk(mirror):
            for name in files:
                size += os.lstat(os.path.join(directory, name)).st_size
        if size > limit:
            shutil.rmtree(remove, ignore_errors=True)
            raise export.ContentRefused(
                f"the repository takes more than {limit} bytes once fetched (quota "
                "git_mirror_max_bytes); its mirror was removed")

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

    def _shipped_blocking(self, mirror: pathlib.Path, from_sha: str | None, to_sha: str,
                          limit: int) -> tuple[list[dict], int]:
        ensure_off_loop()
        if from_sha is None:
            commits = self._log(mirror, to_sha, limit)
            revisions = to_sha
        else:
            commits = self._between_blocking(mirror, from_sha, to_sha, limit)
            revisions = f"{from_sha}..{to_sha}"
        _, out = self._git(["rev-list", "--count", revisions, "--"], cwd=mirror,
                           git_dir=mirror)
        return commits, int(out.strip() or 0)

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
                         budget: export.Budget) -> dict[str, str]:
        ensure_off_loop()
        dest.mkdir(parents=True, exist_ok=True)
        if any(dest.iterdir()):
            raise GitError(f"export destination {dest} is not empty")
        links = export.inspect(self._git, mirror, sha, budget)
        export.unpack(self._git, mirror, sha, dest, dest.parent, budget)
        return links

    def _submodule_urls(self, mirror: pathlib.Path, sha: str) -> dict[str, str | None]:
        ensure_off_loop()
        _, config = self._git(["config", "-z", "--no-includes", "--blob", f"{sha}:.gitmodules",
                               "--list"], cwd=mirror, git_dir=mirror)
        entries = dict(item.partition("\n")[::2] for item in config.split("\0") if item)
        return {entries[key]: entries.get(key[:-len(".path")] + ".url")
                for key in entries if key.startswith("submodule.") and key.endswith(".path")}

    def _export_submodule_blocking(self, sub_mirror: pathlib.Path, commit: str,
                                   dest: pathlib.Path, path: str, budget: export.Budget) -> None:
        ensure_off_loop()
        target = dest / path
        if ".." in pathlib.PurePosixPath(path).parts or not target.resolve().is_relative_to(
                dest.resolve()):
            raise export.ContentRefused(f"submodule path {path!r} is not inside the tree")
        export.inspect(self._git, sub_mirror, commit, budget, prefix=f"{path}/")
        target.mkdir(parents=True, exist_ok=True)
        if any(target.iterdir()):
            raise export.ContentRefused(f"submodule path {path!r} is not empty in the tree")
        export.unpack(self._git, sub_mirror, commit, target, dest.parent, budget,
                      prefix=f"{path}/")


def _empty(dest: pathlib.Path) -> None:
    """Remove what a refused export wrote, keeping `dest` itself (links not followed)."""
    ensure_off_loop()
    if dest.is_dir() and not dest.is_symlink():
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
