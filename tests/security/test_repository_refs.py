"""Hostile refs through the real API, and reading refs without side effects: a GET answers
from Ferry's mirror and never fetches; only a deployer's POST refresh (rate-limited) or a
release does."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.conftest import Api
from tests.deploykit import make_app_repo, register_project


@pytest.fixture
async def viewer_api(api, services, base_url) -> Api:
    user = await services.auth.create_user("viewer", "viewer password", "viewer")
    return Api(base_url, await services.auth.create_token(user, "tests"))


@pytest.fixture
async def app(api, tmp_path):
    repo = make_app_repo(tmp_path / "src")
    await register_project(api, repo)
    status, body = await api.post("/api/projects/app/refresh")
    assert status == 200 and body["fetched"], body
    return repo


def mirror_state(services) -> dict[str, tuple[int, int]]:
    """Every file of the app's mirror with its size and mtime (ns)."""
    root = services.settings.repos_dir / "app.git"
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("ref,attack", [
    ("--upload-pack=touch pwned", "option smuggling"),
    ("-x", "leading dash read as an option"),
    ("main..v1", "a range instead of one ref"),
    ("main@{1}", "reflog syntax"),
    ("HEAD~1", "revision arithmetic"),
    ("refs/heads/../../x", "path climbing"),
    ("ma\x01in", "control byte"),
    ("main\nv1", "newline"),
    ("x" * 300, "overlong"),
    ("$(touch pwned)", "shell substitution (with a space)"),
])
async def test_hostile_ref_is_refused_with_a_400_everywhere(ref, attack, api, app, tmp_path):
    os.chdir(tmp_path)
    status, body = await api.get(f"/api/projects/app/commits?ref={quote(ref, safe='')}")
    assert status == 400, (attack, body)
    status, body = await api.post("/api/releases", {"project": "app", "ref": ref})
    assert status == 400, (attack, body)
    assert not list(Path(tmp_path).rglob("pwned"))


async def test_get_refs_and_commits_never_fetch(api, viewer_api, app, services):
    before = mirror_state(services)
    new = app.commit_version("v4")          # pushed after the last fetch
    for path in ("/api/projects/app/refs", "/api/projects/app/commits",
                 "/api/projects/app/commits?ref=main"):
        status, body = await viewer_api.get(path)
        assert status == 200 and new not in str(body) and "v4" not in str(body), body
    status, body = await viewer_api.get(f"/api/projects/app/commits?ref={new}")
    assert status == 400 and "unknown ref" in body["message"]       # not in the mirror
    assert mirror_state(services) == before


async def test_a_second_refresh_right_after_the_first_does_not_fetch(api, app):
    app.commit_version("v4")
    status, body = await api.post("/api/projects/app/refresh")
    assert status == 200 and body["fetched"] is False          # fetched moments ago
    assert "v4" not in {tag["name"] for tag in body["tags"]}


@pytest.mark.parametrize("settings_overrides", [{"git_refresh_min_interval_s": 0}])
async def test_refresh_fetches_what_was_pushed(api, app):
    new = app.commit_version("v4")
    status, body = await api.post("/api/projects/app/refresh")
    assert status == 200 and body["fetched"] is True and body["fetched_at"]
    assert {"name": "v4", "sha": new} in [{k: t[k] for k in ("name", "sha")}
                                          for t in body["tags"]]


async def test_a_viewer_cannot_make_ferry_fetch(viewer_api, app):
    status, body = await viewer_api.post("/api/projects/app/refresh")
    assert status == 403, body


async def test_refs_of_a_never_fetched_project_are_empty_and_create_no_mirror(
        api, services, tmp_path):
    await register_project(api, make_app_repo(tmp_path / "src"))
    status, body = await api.get("/api/projects/app/refs")
    assert status == 200
    assert body == {"branches": [], "tags": [], "fetched_at": None, "stale": True}
    assert not (services.settings.repos_dir / "app.git").exists()
    status, body = await api.get("/api/projects/app/commits")
    assert status == 400 and "not been fetched" in body["message"]
