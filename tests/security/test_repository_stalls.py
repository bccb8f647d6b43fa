"""Stalled git remotes (real listeners on 127.0.0.x that accept TCP and never answer) must
not starve anything else: not sign-in, not other remotes, not a thread for curl's 300 s."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from services.git.mirrors import GitError, GitService
from services.settings import Settings
from tests.security.repokit import Listener

# Long enough that the stalls outlast the test's checks; the listeners are closed at the
# end, which ends them at once.
STALL = {"git_connect_timeout_s": 60.0, "ssh_connect_timeout_s": 60.0, "git_timeout_s": 120.0,
         "git_fetch_concurrency": 6, "git_fetch_per_remote": 2}


async def wait_until(condition, what: str) -> None:
    async def poll() -> None:
        for _ in range(600):
            if condition():
                return
            await asyncio.sleep(0.05)
    try:
        await asyncio.wait_for(poll(), 30)
    except TimeoutError:
        raise AssertionError(f"never happened: {what}") from None


@pytest.mark.parametrize("settings_overrides", [STALL])
async def test_sign_in_is_answered_while_six_remotes_stall(api, anonymous_api, services):
    await services.auth.create_user("ada", "correct horse battery", "viewer")
    listeners = [await Listener().start(f"127.0.0.{20 + n}") for n in range(6)]
    try:
        for n, listener in enumerate(listeners):
            # Three stall in the TLS handshake, three in the SSH banner (inside git).
            scheme = "https" if n < 3 else "ssh"
            url = f"{scheme}://git@127.0.0.{20 + n}:{listener.port}/r.git"
            status, body = await api.post("/api/projects", {
                "name": f"stalled-{n}", "repo_url": url, "deploy_path": f"/srv/s{n}"})
            assert status == 201, body
        refreshes = [asyncio.create_task(api.post(f"/api/projects/stalled-{n}/refresh"))
                     for n in range(6)]
        # An https remote stalls Ferry's TLS probe itself; an ssh remote's probe is a TCP
        # connect, closed at once, and then git's ssh connects and stalls in the banner.
        await wait_until(lambda: all(listener.open and (n < 3 or listener.accepted >= 2)
                                     for n, listener in enumerate(listeners)),
                         "all six remotes are being waited on")

        status, body = await asyncio.wait_for(anonymous_api.post(
            "/api/session", {"name": "ada", "password": "correct horse battery"}), 5)

        assert status == 201 and body["token"]
        assert not any(task.done() for task in refreshes)
        assert all(listener.open for listener in listeners)
    finally:
        for listener in listeners:
            await listener.close()
    for status, body in await asyncio.gather(*refreshes):
        assert status == 400 and "could not reach the repository" in body["message"], body


@pytest.mark.parametrize("settings_overrides", [STALL])
async def test_a_viewer_reading_refs_of_stalled_projects_touches_no_remote(viewer_api, api):
    listener = await Listener().start("127.0.0.30")
    try:
        status, body = await api.post("/api/projects", {
            "name": "stalled", "repo_url": f"https://127.0.0.30:{listener.port}/r.git",
            "deploy_path": "/srv/stalled"})
        assert status == 201, body
        for _ in range(6):
            status, refs = await viewer_api.get("/api/projects/stalled/refs")
            assert status == 200 and refs["branches"] == [] and refs["fetched_at"] is None
        assert listener.accepted == 0
    finally:
        await listener.close()


@pytest.fixture
async def viewer_api(api, services, base_url):
    from tests.conftest import Api

    user = await services.auth.create_user("viewer", "viewer password", "viewer")
    return Api(base_url, await services.auth.create_token(user, "tests"))


async def test_a_tls_handshake_that_never_completes_is_cut_at_the_connect_timeout(tmp_path):
    listener = await Listener().start("127.0.0.31")
    settings = Settings(data_dir=tmp_path / "data", outbound_allow_private=True,
                        git_connect_timeout_s=1, git_timeout_s=300)
    with ThreadPoolExecutor(2) as pool:
        service = GitService(settings, pool)
        project = {"name": "tls", "repo_url": f"https://127.0.0.31:{listener.port}/r.git"}
        try:
            # git_timeout_s is 300 s: only the connect timeout can end this within 60 s.
            with pytest.raises(GitError, match="could not reach the repository"):
                await asyncio.wait_for(service.sync(project), 60)
        finally:
            await listener.close()


async def test_one_remote_gets_at_most_its_per_remote_share(tmp_path: Path):
    listener = await Listener().start("127.0.0.32")
    settings = Settings(data_dir=tmp_path / "data", outbound_allow_private=True,
                        git_connect_timeout_s=60, git_fetch_per_remote=2,
                        git_fetch_concurrency=6)
    with ThreadPoolExecutor(6) as pool:
        service = GitService(settings, pool)
        url = f"https://127.0.0.32:{listener.port}/r.git"
        syncs = [asyncio.create_task(service.sync({"name": f"p{n}", "repo_url": url}))
                 for n in range(6)]
        try:
            await wait_until(lambda: listener.accepted >= 2, "two connections")
            # Two are held; the other four wait their turn on the event loop.
            await asyncio.sleep(0.5)
            assert listener.accepted == 2 and len(listener.open) == 2
        finally:
            await listener.close()       # every stall ends: the next ones are refused
        results = await asyncio.gather(*syncs, return_exceptions=True)
    assert all(isinstance(result, GitError) for result in results)
    assert listener.most_at_once == 2
