"""Git webhooks in, with payloads shaped like each provider's documented push events:
signed pushes become releases, and everything unsigned, replayed or deleted creates none."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import pytest
import tornado.httpclient

from tests.conftest import Api
from tests.deploykit import register_fleet, register_project, wait_for

SECRET = "webhook-secret-for-tests-0123456789"


def github_push(sha: str, ref: str = "refs/heads/main", pusher: str = "octocat") -> dict:
    """Trimmed from GitHub's documented `push` event."""
    return {"ref": ref, "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246", "after": sha,
            "created": False, "deleted": sha == "0" * 40, "forced": False,
            "repository": {"id": 186853002, "name": "app", "full_name": "octo/app"},
            "pusher": {"name": pusher, "email": f"{pusher}@example.com"},
            "sender": {"login": pusher, "id": 21031067},
            "head_commit": {"id": sha, "message": "Release"}, "commits": []}


def gitlab_push(sha: str, ref: str = "refs/heads/main", user: str = "jsmith") -> dict:
    """Trimmed from GitLab's documented Push Hook."""
    return {"object_kind": "push", "event_name": "push", "before": "95790bf8", "after": sha,
            "ref": ref, "checkout_sha": sha, "user_id": 4, "user_name": "John Smith",
            "user_username": user, "project_id": 15,
            "project": {"name": "app", "path_with_namespace": "mike/app"},
            "commits": [], "total_commits_count": 0}


def gitea_push(sha: str, ref: str = "refs/heads/main", login: str = "gitea-user") -> dict:
    """Trimmed from Gitea's documented push webhook."""
    return {"ref": ref, "before": "28e1879d029cb852e4844d9c718537df08844e03", "after": sha,
            "compare_url": "", "commits": [],
            "repository": {"id": 140, "name": "app", "full_name": "gitea/app"},
            "pusher": {"id": 1, "login": login, "username": login},
            "sender": {"id": 1, "login": login}}


def signed(provider: str, payload: dict, secret: str = SECRET, *,
           delivery: str | None = None) -> tuple[bytes, dict]:
    body = json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    delivery = delivery or str(uuid.uuid4())
    headers = {"Content-Type": "application/json"}
    if provider == "github":
        headers.update({"X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
                        "X-Hub-Signature-256": f"sha256={digest}"})
    elif provider == "gitea":
        headers.update({"X-Gitea-Event": "push", "X-Gitea-Delivery": delivery,
                        "X-Gitea-Signature": digest})
    else:
        headers.update({"X-Gitlab-Event": "Push Hook", "X-Gitlab-Event-UUID": delivery,
                        "X-Gitlab-Token": secret})
    return body, headers


async def send(base_url: str, provider: str, project: str, body: bytes,
               headers: dict) -> tuple[int, dict]:
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        f"{base_url}/hooks/{provider}/{project}", method="POST", body=body, headers=headers,
        raise_error=False)
    return response.code, json.loads(response.body or b"{}")


@pytest.fixture
async def hooked(api, make_fleet, app_repo):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    status, config = await api.put("/api/projects/app/webhook", {
        "secret": SECRET, "rules": [{"branch": "main"}, {"tag": "v*"}]})
    assert status == 200, config
    return app_repo


async def releases(api) -> list[dict]:
    status, body = await api.get("/api/releases?project=app")
    assert status == 200
    return body["releases"]


async def test_a_signed_github_push_to_main_deploys_that_commit_as_the_pusher(
        base_url, api, hooked):
    sha = hooked.shas["v2"]
    status, body = await send(base_url, "github", "app", *signed("github", github_push(sha)))
    assert status == 201, body
    release = await wait_for(api, body["release_id"])
    assert release["state"] == "succeeded"
    assert release["sha"] == sha
    assert release["created_by"] == "octocat"


async def test_a_gitlab_push_with_its_token_creates_a_release(base_url, api, hooked):
    status, body = await send(base_url, "gitlab", "app",
                              *signed("gitlab", gitlab_push(hooked.shas["v1"])))
    assert status == 201, body
    assert (await wait_for(api, body["release_id"]))["created_by"] == "jsmith"


async def test_a_signed_gitea_push_creates_a_release(base_url, api, hooked):
    status, body = await send(base_url, "gitea", "app",
                              *signed("gitea", gitea_push(hooked.shas["v1"])))
    assert status == 201, body
    assert (await wait_for(api, body["release_id"]))["created_by"] == "gitea-user"


async def test_a_gitlab_signed_webhook_header_must_hold_when_sent(base_url, api, hooked):
    body = json.dumps(gitlab_push(hooked.shas["v1"])).encode()
    webhook_id, stamp = str(uuid.uuid4()), str(int(time.time()))
    mac = hmac.new(SECRET.encode(), f"{webhook_id}.{stamp}.".encode() + body, hashlib.sha256)
    headers = {"Content-Type": "application/json", "X-Gitlab-Event": "Push Hook",
               "webhook-id": webhook_id, "webhook-timestamp": stamp,
               "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode()}
    status, created = await send(base_url, "gitlab", "app", body, headers)
    assert status == 201, created
    stale = {**headers, "webhook-id": str(uuid.uuid4()),
             "webhook-timestamp": str(int(time.time()) - 3600)}
    status, _ = await send(base_url, "gitlab", "app", body, stale)
    assert status == 401


async def test_a_tag_push_matching_a_tag_rule_deploys_the_tag(base_url, api, hooked):
    payload = github_push(hooked.shas["v3"], ref="refs/tags/v3")
    status, body = await send(base_url, "github", "app", *signed("github", payload))
    assert status == 201, body
    assert (await wait_for(api, body["release_id"]))["ref"] == "v3"


async def test_a_wrong_signature_creates_nothing(base_url, api, hooked):
    body, headers = signed("github", github_push(hooked.shas["v1"]), secret="not-the-secret-00")
    status, _ = await send(base_url, "github", "app", body, headers)
    assert status == 401
    assert await releases(api) == []


async def test_a_missing_signature_creates_nothing(base_url, api, hooked):
    body, headers = signed("gitea", gitea_push(hooked.shas["v1"]))
    del headers["X-Gitea-Signature"]
    status, _ = await send(base_url, "gitea", "app", body, headers)
    assert status == 401
    assert await releases(api) == []


async def test_a_body_changed_after_signing_creates_nothing(base_url, api, hooked):
    body, headers = signed("github", github_push(hooked.shas["v1"]))
    status, _ = await send(base_url, "github", "app", body.replace(b"main", b"evil"), headers)
    assert status == 401


async def test_an_unknown_project_answers_exactly_like_a_bad_signature(base_url, hooked):
    body, headers = signed("github", github_push(hooked.shas["v1"]))
    unknown = await send(base_url, "github", "no-such-project", body, headers)
    wrong = await send(base_url, "github", "app", body, {**headers,
                                                        "X-Hub-Signature-256": "sha256=00"})
    assert unknown == wrong
    assert unknown[0] == 401


async def test_a_replayed_delivery_creates_nothing_more(base_url, api, hooked):
    body, headers = signed("github", github_push(hooked.shas["v1"]), delivery="d-1")
    first = await send(base_url, "github", "app", body, headers)
    second = await send(base_url, "github", "app", body, headers)
    assert first[0] == 201
    assert second[0] == 200 and "already" in second[1]["message"]
    assert len(await releases(api)) == 1


async def test_a_branch_deletion_creates_nothing(base_url, api, hooked):
    status, body = await send(base_url, "github", "app",
                              *signed("github", github_push("0" * 40)))
    assert status == 202 and "deleted" in body["message"]
    assert await releases(api) == []


async def test_a_push_no_rule_matches_creates_nothing(base_url, api, hooked):
    payload = github_push(hooked.shas["v1"], ref="refs/heads/feature/x")
    status, body = await send(base_url, "github", "app", *signed("github", payload))
    assert status == 202 and "no rule" in body["message"]
    assert await releases(api) == []


async def test_a_refused_delivery_is_in_the_audit_log(base_url, api, hooked):
    body, headers = signed("github", github_push(hooked.shas["v1"]), secret="wrong-secret-000")
    await send(base_url, "github", "app", body, headers)
    status, page = await api.get("/api/audit?action=webhook.")
    assert status == 200
    entry = page["entries"][0]
    assert (entry["action"], entry["via"], entry["target"]) == (
        "webhook.refused", "webhook:github", "app")


async def test_the_secret_is_shown_once_and_never_read_back(api, hooked):
    status, config = await api.put("/api/projects/app/webhook", {"rotate_secret": True})
    assert status == 200 and len(config["secret"]) >= 32
    status, read = await api.get("/api/projects/app/webhook")
    assert "secret" not in read and read["secret_set"] is True
    assert read["endpoints"]["github"] == "/hooks/github/app"


async def test_bad_rules_are_refused(api, hooked):
    status, body = await api.put("/api/projects/app/webhook",
                                 {"rules": [{"branch": "main", "tag": "v*"}]})
    assert status == 400 and "rule 1" in body["message"]
    status, _ = await api.put("/api/projects/app/webhook", {"secret": "short"})
    assert status == 400


async def test_only_a_maintainer_may_read_the_webhook_settings(base_url, services, hooked):
    user = await services.auth.create_user("dev", "deployer-password-1", "deployer")
    token = await services.auth.create_token(user, "cli")
    status, _ = await Api(base_url, token).get("/api/projects/app/webhook")
    assert status == 403


@pytest.mark.parametrize("settings_overrides", [{"webhook_max_body_bytes": 4096}])
async def test_a_payload_past_the_webhook_limit_gets_413_and_creates_nothing(base_url, api,
                                                                             hooked):
    payload = {**github_push(hooked.shas["v1"]), "padding": "x" * 8192}
    status, body = await send(base_url, "github", "app", *signed("github", payload))
    assert status == 413 and "4096" in body["message"]
    assert await releases(api) == []
