"""Artifacts: one tar.gz + sha256 per commit and build-hook text, cached on disk.

`<artifacts_dir>/<project>/<key>.tar.gz` with a `sha256sum`-style `.sha256` sidecar, the
sidecar written last so its presence means the artifact is complete. The archive is
deterministic (sorted entries, owner 0, gzip mtime 0), holds only relative paths, and is
built in the executor, never on the event loop. What it holds follows the content rules of
`services.git.content`, whatever the build hook made: symlinks only relative and inside the
tree (links through other links included), never an absolute one; no `.ferry-release` (the
marker each host writes at the release's root), no control characters in names.
What it unpacks to on a host is capped too (`artifact_max_unpacked_bytes`,
`artifact_max_files`), as the compressed size (`artifact_max_bytes`) says little about that.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gzip
import hashlib
import logging
import os
import re
import tarfile
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from services.errors import FerryError
from services.git.content import link_problem, path_problem
from services.git.mirrors import SHA_RE
from services.git.runner import ensure_off_loop
from services.settings import Settings

log = logging.getLogger("ferry.artifacts")

_DIGEST = re.compile(r"[0-9a-f]{64}")
_PROJECT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SUFFIX = ".tar.gz"


class ArtifactError(FerryError):
    """Packaging failed (too large, unsupported file); the message says why."""


@dataclass
class Artifact:
    path: Path
    sha256: str
    size: int
    cached: bool
    key: str


class _HashingWriter:
    """A write-only file that hashes, counts and caps what passes through to `raw`."""

    def __init__(self, raw, limit: int) -> None:
        self.raw, self.limit = raw, limit
        self.size = 0
        self.hash = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.size += len(data)
        if self.size > self.limit:
            raise ArtifactError(f"the artifact is larger than artifact_max_bytes "
                                f"({self.limit} bytes)")
        self.hash.update(data)
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()


class ArtifactService:
    """Builds and caches artifacts; one build at a time per project and key."""

    def __init__(self, settings: Settings, executor: concurrent.futures.Executor) -> None:
        self.settings = settings
        self._executor = executor
        self._locks: dict[str, asyncio.Lock] = {}

    def key(self, project: dict, sha: str) -> str:
        """The commit SHA plus a short hash of the after_checkout (build) hook text."""
        if not isinstance(sha, str) or not SHA_RE.fullmatch(sha):
            raise ValueError(f"expected a 40-hex commit SHA, got {sha!r}")
        hook = (project.get("hooks") or {}).get("after_checkout") or ""
        return f"{sha}-{hashlib.sha256(hook.encode()).hexdigest()[:12]}"

    def cached(self, project: dict, sha: str) -> Artifact | None:
        """The finished artifact for this commit and build hook, if there is one."""
        key = self.key(project, sha)
        path = self._dir(project) / f"{key}{_SUFFIX}"
        try:
            digest = path.with_name(path.name + ".sha256").read_text().split()[0]
            size = path.stat().st_size
        except (OSError, IndexError):
            return None
        if not _DIGEST.fullmatch(digest):
            return None
        return Artifact(path=path, sha256=digest, size=size, cached=True, key=key)

    async def package(self, project: dict, sha: str, tree: Path) -> Artifact:
        """tar.gz + sha256 of `tree`, or the cached artifact for this commit and hook."""
        key = self.key(project, sha)
        path = self._dir(project) / f"{key}{_SUFFIX}"
        async with self._locks.setdefault(str(path), asyncio.Lock()):
            hit = self.cached(project, sha)
            if hit is not None:
                return hit
            loop = asyncio.get_running_loop()
            digest, size = await loop.run_in_executor(self._executor, self._build,
                                                      Path(tree), path)
        log.info("artifact %s/%s: %d bytes, sha256 %s", project["name"], key, size, digest)
        return Artifact(path=path, sha256=digest, size=size, cached=False, key=key)

    async def prune(self, project: dict, keep: int) -> None:
        """Delete all but the newest `keep` artifacts of a project."""
        if keep < 0:
            raise ValueError("keep must not be negative")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._prune, self._dir(project), keep)

    def _dir(self, project: dict) -> Path:
        name = project.get("name")
        if not isinstance(name, str) or not _PROJECT_NAME.fullmatch(name):
            raise ArtifactError(f"project name {name!r} cannot name an artifact directory")
        return self.settings.artifacts_dir / name

    # -- blocking work (executor only) ----------------------------------------------------

    def _build(self, tree: Path, path: Path) -> tuple[str, int]:
        """Write the archive to a temp file, then rename it and its sidecar into place."""
        ensure_off_loop()
        if not tree.is_dir():
            raise ArtifactError(f"nothing to package: {tree} is not a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
        sidecar = path.with_name(path.name + ".sha256")
        sidecar_tmp = sidecar.with_name(f".{sidecar.name}.{uuid.uuid4().hex}.tmp")
        try:
            with tmp.open("wb") as raw:
                out = _HashingWriter(raw, self.settings.artifact_max_bytes)
                with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0,
                                   compresslevel=self.settings.artifact_gzip_level) as gz, \
                        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                    quota = _Quota(self.settings)
                    for arcname, full in _entries(tree):
                        _add(tar, arcname, full, tree, quota)
                raw.flush()
                os.fsync(raw.fileno())
            digest = out.hash.hexdigest()
            os.replace(tmp, path)
            sidecar_tmp.write_text(f"{digest}  {path.name}\n")
            os.replace(sidecar_tmp, sidecar)
            return digest, out.size
        finally:
            tmp.unlink(missing_ok=True)
            sidecar_tmp.unlink(missing_ok=True)

    def _prune(self, directory: Path, keep: int) -> None:
        ensure_off_loop()
        if not directory.is_dir():
            return
        artifacts = sorted((p for p in directory.glob(f"*{_SUFFIX}")
                            if not p.name.startswith(".")),
                           key=lambda p: p.stat().st_mtime, reverse=True)
        for old in artifacts[keep:]:
            old.with_name(old.name + ".sha256").unlink(missing_ok=True)   # uncached first
            old.unlink(missing_ok=True)
            log.info("artifact pruned: %s", old.name)


def _entries(tree: Path):
    """(archive name, path) of everything under tree, sorted, parents before children;
    symlinks (to directories too) are listed, never followed."""
    for root, dirs, files in os.walk(tree):
        dirs.sort()
        relative = PurePosixPath(Path(root).relative_to(tree).as_posix())
        for name in sorted(dirs + files):
            yield (relative / name).as_posix().removeprefix("./"), os.path.join(root, name)


class _Quota:
    """What the artifact will unpack to on a host: files and bytes, before compression."""

    def __init__(self, settings: Settings) -> None:
        self.max_files = settings.artifact_max_files
        self.max_bytes = settings.artifact_max_unpacked_bytes
        self.files = self.bytes = 0

    def charge(self, info: tarfile.TarInfo) -> None:
        self.files += 0 if info.isdir() else 1
        self.bytes += info.size if info.isfile() else 0
        if self.files > self.max_files:
            raise ArtifactError(f"the built tree has more than {self.max_files} files "
                                "(quota artifact_max_files)")
        if self.bytes > self.max_bytes:
            raise ArtifactError(f"the built tree holds more than {self.max_bytes} bytes "
                                "(quota artifact_max_unpacked_bytes)")


def _add(tar: tarfile.TarFile, arcname: str, full: str, tree: Path, quota: _Quota) -> None:
    parts = PurePosixPath(arcname).parts
    if arcname.startswith("/") or ".." in parts:
        raise ArtifactError(f"refusing to package {arcname!r}: unsafe path")
    problem = path_problem(arcname, allow_dot_git=True)
    if problem is None and os.path.islink(full):
        problem = link_problem(tree, Path(full))
    if problem:
        shown = arcname.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        raise ArtifactError(f"refusing to package {shown!r}: {problem}")
    info = tar.gettarinfo(full, arcname)
    if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        raise ArtifactError(f"refusing to package {arcname!r}: not a regular file, "
                            "directory or symlink")
    quota.charge(info)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode &= 0o755
    info.mtime = int(info.mtime)      # whole seconds: no per-file PAX header
    if info.isfile():
        with open(full, "rb") as data:
            tar.addfile(info, data)
    else:
        tar.addfile(info)
