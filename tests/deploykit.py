"""Helpers for deploy tests: a versioned app repository, registering a fleet and a
project through the API, and waiting for a release to end."""

from __future__ import annotations

import asyncio
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TERMINAL = ("succeeded", "failed", "cancelled", "rolled_back", "interrupted")
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"}


@dataclass
class AppRepo:
    path: Path
    shas: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def git(self, *args: str) -> str:
        return subprocess.run(["git", *args], cwd=self.path, env=GIT_ENV, check=True,
                              capture_output=True, text=True).stdout.strip()

    def commit_version(self, version: str, *, tag: bool = True) -> str:
        (self.path / "VERSION").write_text(version + "\n")
        (self.path / "index.html").write_text(f"<h1>{version}</h1>\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", f"Release {version}")
        if tag:
            self.git("tag", "-a", version, "-m", version)
        sha = self.git("rev-parse", "HEAD")
        self.shas[version] = sha
        return sha


def make_app_repo(path: Path, versions: tuple[str, ...] = ("v1", "v2", "v3")) -> AppRepo:
    """A repository on branch main with one tagged commit per version."""
    path.mkdir(parents=True)
    repo = AppRepo(path)
    repo.git("init", "-q", "-b", "main")
    for version in versions:
        repo.commit_version(version)
    return repo


async def register_fleet(api, fleet, *, group: str = "web", key_path: str | None = None,
                         indexes: list[int] | None = None) -> list[str]:
    """Add each fleet host through the API, then scan and confirm its key."""
    names = []
    for index in indexes if indexes is not None else range(len(fleet.hosts)):
        host = fleet.hosts[index]
        status, body = await api.post("/api/hosts", {
            "name": host.name, "address": host.address, "port": host.port,
            "user": "deploy", "key_path": key_path or str(fleet.client_key_path),
            "groups": [group]})
        assert status == 201, body
        status, scan = await api.post(f"/api/hosts/{host.name}/scan")
        assert status == 200, scan
        assert scan["fingerprint"] == host.fingerprint
        status, body = await api.post(f"/api/hosts/{host.name}/trust",
                                      {"fingerprint": scan["fingerprint"]})
        assert status == 200, body
        names.append(host.name)
    return names


async def register_project(api, repo: AppRepo, name: str = "app", **fields) -> dict:
    body = {"name": name, "repo_url": repo.url, "deploy_path": f"/srv/{name}",
            "groups": ["web"], **fields}
    status, project = await api.post("/api/projects", body)
    assert status == 201, project
    return project


async def deploy(api, ref: str, project: str = "app", **fields) -> dict:
    status, release = await api.post("/api/releases", {"project": project, "ref": ref,
                                                       **fields})
    assert status == 201, release
    return release


async def wait_for(api, release_id: int, states: tuple[str, ...] = TERMINAL,
                   timeout: float = 90) -> dict:
    """Poll the API until the release reaches one of `states`."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status, release = await api.get(f"/api/releases/{release_id}")
        assert status == 200, release
        if release["state"] in states:
            return release
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"release {release_id} still {release['state']}: {release}")
        await asyncio.sleep(0.1)


async def deploy_and_wait(api, ref: str, project: str = "app", **fields) -> dict:
    release = await deploy(api, ref, project, **fields)
    return await wait_for(api, release["id"])


def hosts_by_name(release: dict) -> dict[str, dict]:
    return {run["host"]: run for run in release["host_runs"]}


def current_target(fleet, index: int, project: str = "app") -> str:
    """Where /srv/<project>/current points on that host's own filesystem."""
    return os.readlink(fleet.host_path(index, f"/srv/{project}/current"))


def read_current(fleet, index: int, name: str, project: str = "app") -> str:
    return Path(fleet.host_path(index, f"/srv/{project}/current/{name}")).read_text()
