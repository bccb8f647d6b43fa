"""Real git repositories for tests, made with the git CLI (no mocks).

`make_repo(path)` builds a repository with three commits on `main`, a `feature/x` branch
with one more commit, a lightweight tag `v1.0`, an annotated tag `v2.0`, an executable
script and a symlink. `commit(repo, files, message)` adds another commit.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_BASE_TIME = 1_700_000_000


@dataclass
class RepoInfo:
    path: Path
    url: str                                                 # file:// URL of the repository
    commits: list[str] = field(default_factory=list)         # main, oldest first
    branches: dict[str, str] = field(default_factory=dict)   # name -> commit SHA
    tags: dict[str, str] = field(default_factory=dict)       # name -> commit SHA (peeled)


def git(repo: Path, *args: str, when: int | None = None) -> str:
    """Run git in `repo` with a fixed identity and (optionally) a fixed date."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "Ada Tester", "GIT_AUTHOR_EMAIL": "ada@example.com",
           "GIT_COMMITTER_NAME": "Ada Tester", "GIT_COMMITTER_EMAIL": "ada@example.com",
           "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull}
    if when is not None:
        env["GIT_AUTHOR_DATE"] = env["GIT_COMMITTER_DATE"] = f"@{when} +0000"
    result = subprocess.run(["git", *args], cwd=repo, env=env, check=True,
                            capture_output=True, text=True)
    return result.stdout.strip()


def commit(repo: Path, files: dict[str, str], message: str, when: int | None = None) -> str:
    """Write files (relative path -> text), commit them all, return the new SHA."""
    for name, text in files.items():
        target = repo / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message, when=when)
    return git(repo, "rev-parse", "HEAD")


def make_repo(path: Path) -> RepoInfo:
    """A small repository with history, a branch, a lightweight and an annotated tag."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    info = RepoInfo(path=path, url=path.resolve().as_uri())
    info.commits.append(commit(path, {"README.md": "# demo\n", "app.py": "VERSION = 1\n"},
                               "First commit", when=_BASE_TIME))
    git(path, "tag", "v1.0")
    script = path / "bin" / "run.sh"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\necho run\n")
    script.chmod(0o755)
    (path / "current-readme").symlink_to("README.md")
    info.commits.append(commit(path, {"app.py": "VERSION = 2\n"}, "Second: script and link",
                               when=_BASE_TIME + 60))
    git(path, "tag", "-a", "v2.0", "-m", "Release 2.0", when=_BASE_TIME + 90)
    info.commits.append(commit(path, {"app.py": "VERSION = 3\n", "lib/util.py": "X = 1\n"},
                               "Third commit", when=_BASE_TIME + 120))
    git(path, "checkout", "-q", "-b", "feature/x", info.commits[1])
    feature = commit(path, {"feature.txt": "x\n"}, "Feature work", when=_BASE_TIME + 180)
    git(path, "checkout", "-q", "main")
    info.branches = {"main": info.commits[-1], "feature/x": feature}
    info.tags = {"v1.0": info.commits[0], "v2.0": info.commits[1]}
    return info
