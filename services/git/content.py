"""Rules for repository content Ferry writes on its server and ships to hosts.

Repository content is hostile. A committed symlink is kept only when it points inside the
tree by a relative path; an absolute one, or one whose target leaves the tree (lexically or
through other links), is refused with the path and the rule named, so nothing Ferry (or a
build hook writing a file of that name) writes can land outside the tree. Names Ferry
writes itself (the `.ferry-release` marker at a release's root) and `.git` are refused
from repositories, as are names with control characters (newlines would forge lines in
logs and host-side listings). The exporter and the packager apply the same rules (the
packager allows a `.git` the build made).

May import: nothing of Ferry's.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path

# Ferry's own file at the root of every release on a host (services/releases/remote.py).
RELEASE_MARKER = ".ferry-release"
RESERVED_ROOT_NAMES = frozenset({RELEASE_MARKER})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def path_problem(path: str, *, allow_dot_git: bool = False) -> str | None:
    """Why a relative tree path may not be exported or packaged, or None. A `.git` from
    a repository could configure (and run) git for the build; one a build made (a
    dependency checked out by the package manager) is allowed with `allow_dot_git`."""
    if _CONTROL.search(path):
        return "its name holds a control character (such as a newline or tab)"
    parts = path.split("/")
    if not allow_dot_git and any(part.casefold() == ".git" for part in parts):
        return "a path component is .git"
    if parts[0] in RESERVED_ROOT_NAMES:
        return f"{parts[0]} is reserved for Ferry's own release marker"
    return None


def link_target_problem(path: str, target: str) -> str | None:
    """Why a symlink at tree path `path` pointing to `target` is refused (by its text
    alone), or None."""
    if not target:
        return "it is a symlink with an empty target"
    if target.startswith("/"):
        return f"it is an absolute symlink (to {target!r})"
    if _CONTROL.search(target):
        return "its symlink target holds a control character"
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
    if joined == ".." or joined.startswith("../"):
        return f"it is a symlink that leaves the tree (to {target!r})"
    return None


def link_problem(root: Path, link: Path) -> str | None:
    """Why the symlink `link` inside the real directory `root` is refused: its text, then
    where it really resolves, following the tree's other links."""
    target = os.readlink(link)
    problem = link_target_problem(link.relative_to(root).as_posix(), target)
    if problem:
        return problem
    if not Path(os.path.realpath(link)).is_relative_to(os.path.realpath(root)):
        return f"it is a symlink that leaves the tree through other links (to {target!r})"
    return None


def tree_problems(root: Path) -> tuple[str, str] | None:
    """The first (path, problem) among every entry under `root` (links not followed)."""
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            full = Path(directory, name)
            relative = full.relative_to(root).as_posix()
            problem = path_problem(relative)
            if problem is None and full.is_symlink():
                problem = link_problem(root, full)
            if problem:
                return relative, problem
    return None
