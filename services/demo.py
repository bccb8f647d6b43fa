"""`server.py --demo`: a fleet of local SSH hosts, a demo git repository with a few tagged
versions, both registered, and an API token for the README's curl lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path

from services import Services
from services.errors import Conflict

log = logging.getLogger("ferry.demo")
ROOT = Path(__file__).resolve().parent.parent
VERSIONS = [
    ("v1.0.0", "<h1>Demo app 1.0</h1>\n", "First release"),
    ("v1.1.0", "<h1>Demo app 1.1</h1>\n<p>Now with a tagline.</p>\n", "Add a tagline"),
    ("v2.0.0", "<h1>Demo app 2.0</h1>\n<p>Redesigned.</p>\n", "Redesign the front page"),
]
PROJECT = {
    "name": "demo-app", "environment": "production", "deploy_path": "/srv/demo-app",
    "keep_releases": 3, "groups": ["demo"],
    "hooks": {
        # rm first: a REVISION the repository committed (a symlink, say) is replaced by
        # Ferry's own file, never written through.
        "after_checkout": "echo \"building $FERRY_REF ($FERRY_SHA)\"\n"
                          "rm -f REVISION && printf '%s\\n' \"$FERRY_SHA\" > REVISION\n",
        "before_release": "echo \"preparing release $FERRY_RELEASE_ID on $FERRY_HOST\"\n",
        "after_release": "echo \"restarting demo-app on $FERRY_HOST\"\n",
    },
    "health_check": {"command": "test -s index.html && test -s REVISION", "retries": 3,
                     "interval_s": 1},
    "strategy": {"batches": ["100%"], "parallel": 20},
    "description": "A static page, deployed to the demo fleet.",
}


async def _git(cwd: Path, *args: str) -> None:
    process = await asyncio.create_subprocess_exec(
        "git", *args, cwd=str(cwd), stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "GIT_AUTHOR_NAME": "Ferry Demo", "GIT_AUTHOR_EMAIL": "demo@ferry.local",
             "GIT_COMMITTER_NAME": "Ferry Demo", "GIT_COMMITTER_EMAIL": "demo@ferry.local"})
    _, stderr = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {stderr.decode()[:500]}")


class Demo:
    """Owns the demo fleet process for the lifetime of the server."""

    def __init__(self, services: Services, directory: Path, hosts: int = 20) -> None:
        self.services = services
        self.directory = directory
        self.count = hosts
        self.fleet: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        await asyncio.to_thread(self.directory.mkdir, parents=True, exist_ok=True)
        manifest = await self.start_fleet()
        repo = await self.make_repository()
        await self.register_hosts(manifest)
        await self.register_project(repo)
        await self.write_token()

    async def start_fleet(self) -> dict:
        manifest_path = self.directory / "fleet.json"
        with contextlib.suppress(FileNotFoundError):
            manifest_path.unlink()
        self.fleet = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "fleet", "--hosts", str(self.count),
            "--name-prefix", "demo", "--parent-pid", str(os.getpid()),
            "--root", str(self.directory / "fleet"), "--manifest", str(manifest_path),
            cwd=str(ROOT), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            # Its own session: a Ctrl-C in Ferry's terminal must not stop the hosts under
            # running releases; Ferry stops the fleet itself once the releases are safe.
            start_new_session=True)
        line = await asyncio.wait_for(self.fleet.stdout.readline(), 120)
        if b"ready" not in line:
            raise RuntimeError("the demo fleet did not start")
        log.info("demo fleet of %d SSH hosts is up", self.count)
        return json.loads(await asyncio.to_thread(manifest_path.read_text))

    async def make_repository(self) -> Path:
        repo = self.directory / "demo-app.git-src"
        if (repo / ".git").exists():
            return repo
        await asyncio.to_thread(repo.mkdir, parents=True, exist_ok=True)
        await _git(repo, "init", "-q", "-b", "main")
        for tag, page, subject in VERSIONS:
            await asyncio.to_thread((repo / "index.html").write_text, page)
            await _git(repo, "add", "index.html")
            await _git(repo, "commit", "-q", "-m", subject)
            await _git(repo, "tag", "-a", tag, "-m", f"Release {tag}")
        return repo

    async def register_hosts(self, manifest: dict) -> None:
        hosts = self.services.hosts
        for entry in manifest["hosts"]:
            body = {"name": entry["name"], "address": entry["address"], "port": entry["port"],
                    "user": manifest["user"], "key_path": manifest["client_key"],
                    "groups": ["demo"], "variables": {"APP_ENV": "demo"}}
            try:
                await hosts.create(body)
            except Conflict:
                await hosts.update(entry["name"], {k: v for k, v in body.items() if k != "name"})
            # Our own fleet: the fingerprint in its manifest is the confirmation.
            await hosts.trust(entry["name"], entry["fingerprint"])

    async def register_project(self, repo: Path) -> None:
        body = {**PROJECT, "repo_url": f"file://{repo}"}
        try:
            await self.services.projects.create(body)
        except Conflict:
            await self.services.projects.update(PROJECT["name"], {
                k: v for k, v in body.items() if k != "name"})

    async def write_token(self) -> None:
        admin = await self.services.auth.user("admin")
        token = await self.services.auth.create_token(admin, "demo")
        path = self.directory / "token"
        await asyncio.to_thread(path.write_text, token + "\n")
        await asyncio.to_thread(os.chmod, path, 0o600)

    async def stop(self) -> None:
        if self.fleet is not None and self.fleet.returncode is None:
            self.fleet.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.fleet.wait(), 10)
            except TimeoutError:
                self.fleet.kill()
                await self.fleet.wait()
