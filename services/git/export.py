"""Exporting a commit's tree from a bare mirror into a directory, treating content as hostile.

Before anything is written, the tree is listed (`git ls-tree -r -l`, read as git writes it)
and charged against the quotas: `repo_export_max_files` entries and `repo_export_max_bytes`
of blob content, counting a blob once per path (a small repository whose one big blob is
referenced many times is refused here, before it unpacks). Names are checked by the rules of
`services.git.content`. Then `git archive` is unpacked with tarfile's data filter plus those
rules (again counting bytes), and finally every symlink in the whole tree, submodules
included, is resolved to prove it stays inside. A refusal names the path or the quota.

Blocking functions, for the git executor only.
"""

from __future__ import annotations

import os
import pathlib
import tarfile
import tempfile
from dataclasses import dataclass

from services.git.content import link_target_problem, path_problem, tree_problems
from services.git.runner import GitError, GitRunner, ensure_off_loop


class ContentRefused(GitError):
    """The repository's content breaks a rule or a quota; fetching again will not help."""


@dataclass
class Budget:
    """What one export may still write: files and bytes, shared by a tree's submodules."""

    max_files: int
    max_bytes: int
    files: int = 0
    bytes: int = 0

    def charge(self, sha: str, files: int, size: int) -> None:
        self.files += files
        self.bytes += size
        if self.files > self.max_files:
            raise ContentRefused(f"the tree at {sha[:12]} has more than {self.max_files} "
                                 "files (quota repo_export_max_files)")
        if self.bytes > self.max_bytes:
            raise ContentRefused(f"the tree at {sha[:12]} unpacks to more than "
                                 f"{self.max_bytes} bytes (quota repo_export_max_bytes)")


def shown(path: str) -> str:
    """A path as a message may hold it: printable, and storable (no lone surrogates)."""
    return repr(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))


def inspect(git: GitRunner, mirror: pathlib.Path, sha: str, budget: Budget,
            prefix: str = "") -> dict[str, str]:
    """Charge the tree at `sha` to `budget` and check its names; return its submodule
    links (path -> commit). Stops reading at the first refusal."""
    ensure_off_loop()
    links: dict[str, str] = {}
    with git.records(["ls-tree", "-r", "-l", "-z", "--full-tree", sha], cwd=mirror,
                     git_dir=mirror) as records:
        for record in records:
            meta, _, raw_path = record.partition(b"\t")
            path = raw_path.decode("utf-8", "surrogateescape")
            fields = meta.decode("ascii", "replace").split()
            if len(fields) != 4:
                continue
            _, kind, obj, size = fields
            problem = path_problem(prefix + path)
            if problem:
                raise ContentRefused(f"refusing {shown(prefix + path)} in {sha[:12]}: "
                                     f"{problem}")
            if kind == "commit":
                links[path] = obj
            elif kind == "blob":
                budget.charge(sha, 1, int(size) if size.isdigit() else 0)
    return links


def unpack(git: GitRunner, mirror: pathlib.Path, sha: str, dest: pathlib.Path,
           spool_dir: pathlib.Path, budget: Budget, prefix: str = "") -> None:
    """git archive of `sha` into `dest` (empty), through the checked member filter."""
    ensure_off_loop()
    written = Budget(budget.max_files, budget.max_bytes)

    def checked(member: tarfile.TarInfo, path: str) -> tarfile.TarInfo:
        name = prefix + member.name
        problem = path_problem(name)
        if problem is None and member.issym():
            problem = link_target_problem(name, member.linkname)
        elif problem is None and not (member.isfile() or member.isdir()):
            problem = "not a file, directory or symlink"
        if problem:
            raise ContentRefused(f"refusing {shown(name)} in {sha[:12]}: {problem}")
        written.charge(sha, 1 if member.isfile() else 0, member.size)
        return tarfile.data_filter(member, path)

    with tempfile.TemporaryFile(dir=spool_dir) as spool:
        git(["archive", "--format=tar", sha], cwd=mirror, git_dir=mirror, output_stream=spool)
        spool.seek(0)
        try:
            with tarfile.open(fileobj=spool, mode="r:") as tar:
                tar.extractall(dest, filter=checked)  # noqa: S202 - filtered
                for link in (m for m in tar.getmembers() if m.issym()):
                    # tarfile leaves a symlink's own mtime at "now": make it the commit's
                    os.utime(dest / link.name, (link.mtime, link.mtime), follow_symlinks=False)
        except tarfile.TarError as error:
            raise ContentRefused(f"exporting {sha[:12]} failed: {error}") from None


def check_tree(root: pathlib.Path) -> None:
    """Every path and symlink of the finished tree, links resolved through each other."""
    ensure_off_loop()
    found = tree_problems(root)
    if found:
        path, problem = found
        raise ContentRefused(f"refusing {shown(path)}: {problem}")
