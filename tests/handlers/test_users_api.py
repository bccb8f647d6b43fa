"""Users (admins manage them) and API tokens (each user manages their own), against the
real server and database: disabling, expiry and revocation take effect at once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import Api

ALICE = {"name": "alice", "password": "alice-password", "role": "deployer"}


async def sign_in(anonymous_api: Api, name: str, password: str) -> tuple[int, dict]:
    return await anonymous_api.post("/api/session", {"name": name, "password": password})


@pytest.fixture
async def alice(api, anonymous_api, base_url) -> Api:
    """Alice, created through the API, with a token from signing in."""
    status, body = await api.post("/api/users", ALICE)
    assert status == 201, body
    status, body = await sign_in(anonymous_api, "alice", "alice-password")
    assert status == 201, body
    return Api(base_url, body["token"])


async def test_an_admin_creates_a_user_who_is_listed_with_the_last_sign_in(api, alice):
    status, body = await api.get("/api/users")
    assert status == 200
    users = {user["name"]: user for user in body["users"]}
    assert users["alice"]["role"] == "deployer" and users["alice"]["disabled"] is False
    assert users["alice"]["last_signin_at"] is not None
    assert users["admin"]["last_signin_at"] is None       # the tests' token, no sign-in
    assert not any({"hash", "salt", "password"} & set(user) for user in body["users"])


async def test_only_an_admin_manages_users(alice):
    for method, path, body in (("GET", "/api/users", None), ("POST", "/api/users", ALICE),
                               ("GET", "/api/users/admin", None),
                               ("PUT", "/api/users/alice", {"role": "admin"})):
        status, answer = await alice.request(method, path, body)
        assert status == 403, (method, path, answer)


BAD_USERS = [
    ({**ALICE, "name": "bob\n"}, "name"), ({**ALICE, "name": "../x"}, "name"),
    ({**ALICE, "name": "bob", "role": "root"}, "role"),
    ({**ALICE, "name": "bob", "password": "short"}, "password"),
    ({**ALICE, "name": "bob", "password": 12345678}, "password"),
    ({**ALICE, "name": "bob", "admin": True}, "admin")]


async def test_a_bad_user_field_is_refused_with_400(api):
    for body, field in BAD_USERS:
        status, answer = await api.post("/api/users", body)
        assert status == 400 and field in answer["message"], (body, answer)
    status, answer = await api.put("/api/users/admin", {"disabled": "yes"})
    assert status == 400 and "disabled" in answer["message"], answer
    assert (await api.get("/api/users/nobody"))[0] == 404


async def test_a_user_name_is_taken_once(api, alice):
    status, body = await api.post("/api/users", ALICE)
    assert status == 409 and "already exists" in body["message"]


async def test_a_password_reset_takes_the_new_password_only(api, anonymous_api, alice):
    status, body = await api.put("/api/users/alice", {"password": "a-new-password"})
    assert status == 200 and "password" not in body
    assert (await sign_in(anonymous_api, "alice", "alice-password"))[0] == 403
    assert (await sign_in(anonymous_api, "alice", "a-new-password"))[0] == 201


async def test_a_role_change_holds_from_the_next_request(api, alice):
    assert (await alice.get("/api/hosts"))[0] == 200
    status, body = await api.put("/api/users/alice", {"role": "member"})
    assert status == 200 and body["role"] == "member"
    assert (await alice.get("/api/hosts"))[0] == 403


async def test_a_disabled_users_token_and_session_get_401_at_once(api, alice, services):
    user = await services.auth.user("alice")
    session = await services.auth.create_session(user)
    status, body = await api.put("/api/users/alice", {"disabled": True})
    assert status == 200 and body["disabled"] is True
    status, body = await alice.get("/api/me")
    assert status == 401, body
    assert await services.auth.session_user(session) is None
    status, _ = await sign_in(Api(alice.base_url, None), "alice", "alice-password")
    assert status == 403


async def test_a_reenabled_user_gets_their_tokens_back(api, alice):
    await api.put("/api/users/alice", {"disabled": True})
    await api.put("/api/users/alice", {"disabled": False})
    assert (await alice.get("/api/me"))[0] == 200


async def test_the_last_admin_can_be_neither_disabled_nor_demoted(api):
    for change in ({"disabled": True}, {"role": "viewer"}):
        status, body = await api.put("/api/users/admin", change)
        assert status == 409 and "last enabled admin" in body["message"], body


async def test_user_changes_are_audited_without_passwords(api, alice):
    await api.put("/api/users/alice", {"role": "viewer", "password": "another-password"})
    await api.put("/api/users/alice", {"disabled": True})
    status, body = await api.get("/api/audit?actor=admin&action=user.")
    assert status == 200, body
    actions = {entry["action"]: entry for entry in body["entries"]}
    assert {"user.create", "user.update", "user.disable"} <= set(actions)
    assert actions["user.update"]["details"]["role"] == ["deployer", "viewer"]
    assert "another-password" not in str(body) and "alice-password" not in str(body)


# -- tokens -------------------------------------------------------------------------------


async def test_a_token_is_shown_once_and_listed_without_its_secret(alice):
    status, token = await alice.post("/api/tokens", {"name": "ci", "expires_in_days": 30})
    assert status == 201 and token["token"].startswith("fy_") and token["name"] == "ci"
    expires = datetime.fromisoformat(token["expires_at"])
    assert timedelta(days=29) < expires - datetime.now(UTC) <= timedelta(days=30)
    status, body = await alice.get("/api/tokens")
    listed = {t["id"]: t for t in body["tokens"]}[token["id"]]
    assert "token" not in listed and token["token"] not in str(body)
    assert listed["name"] == "ci" and listed["last_used_at"] is None


async def test_a_tokens_last_use_is_listed(alice, base_url):
    _, token = await alice.post("/api/tokens", {"name": "bot"})
    assert (await Api(base_url, token["token"]).get("/api/me"))[0] == 200
    _, body = await alice.get("/api/tokens")
    assert {t["id"]: t for t in body["tokens"]}[token["id"]]["last_used_at"] is not None


async def test_a_revoked_token_is_refused(alice, base_url):
    _, token = await alice.post("/api/tokens", {"name": "temp"})
    bot = Api(base_url, token["token"])
    assert (await bot.get("/api/me"))[0] == 200
    status, _ = await alice.delete(f"/api/tokens/{token['id']}")
    assert status == 204
    assert (await bot.get("/api/me"))[0] == 401
    assert (await alice.delete(f"/api/tokens/{token['id']}"))[0] == 404


async def test_an_expired_token_is_refused(alice, base_url):
    expiry = datetime.now(UTC) + timedelta(seconds=1.5)
    _, token = await alice.post("/api/tokens", {"name": "short",
                                                "expires_at": expiry.isoformat()})
    bot = Api(base_url, token["token"])
    assert (await bot.get("/api/me"))[0] == 200        # resolved, and remembered
    await asyncio.sleep(max(0.0, (expiry - datetime.now(UTC)).total_seconds()) + 0.1)
    assert (await bot.get("/api/me"))[0] == 401


async def test_one_user_cannot_revoke_anothers_token(api, alice):
    _, token = await api.post("/api/tokens", {"name": "admin's"})
    status, _ = await alice.delete(f"/api/tokens/{token['id']}")
    assert status == 404
    assert (await Api(api.base_url, token["token"]).get("/api/me"))[0] == 200


BAD_TOKENS = [
    ({"name": "x", "expires_at": "2001-01-01T00:00:00Z"}, "future"),
    ({"name": "x", "expires_at": "2999-01-01T00:00:00Z"}, "within"),
    ({"name": "x", "expires_at": "tomorrow"}, "expires_at"),
    ({"name": "x", "expires_in_days": 0}, "expires_in_days"),
    ({"name": "x", "expires_in_days": True}, "expires_in_days"),
    ({"name": "x", "expires_in_days": 1, "expires_at": "2099-01-01T00:00:00Z"}, "not both"),
    ({"name": "x\n"}, "name"), ({"name": "x", "scope": "all"}, "scope")]


async def test_a_bad_token_field_is_refused_with_400(api):
    for body, field in BAD_TOKENS:
        status, answer = await api.post("/api/tokens", body)
        assert status == 400 and field in answer["message"], (body, answer)


async def test_token_actions_are_audited_without_the_secret(alice, api):
    _, token = await alice.post("/api/tokens", {"name": "audited"})
    await alice.delete(f"/api/tokens/{token['id']}")
    _, body = await api.get("/api/audit?actor=alice&action=token.")
    assert {e["action"] for e in body["entries"]} == {"token.create", "token.revoke"}
    assert token["token"] not in str(body)


# -- sign-in throttling -----------------------------------------------------------------

SHORT = {"signin_max_failures": 3, "signin_address_max_failures": 1000,
         "signin_window_s": 600.0, "signin_lockout_s": 1.0, "signin_lockout_max_s": 4.0}


@pytest.mark.parametrize("settings_overrides", [SHORT])
async def test_sign_in_answers_429_after_failures_then_takes_the_right_password(
        anonymous_api, alice):
    statuses = [(await sign_in(anonymous_api, "alice", f"guess-{n}"))[0] for n in range(4)]
    assert statuses == [403, 403, 403, 429]
    status, body = await sign_in(anonymous_api, "alice", "alice-password")
    assert status == 429 and body["retry_after"] >= 1
    await asyncio.sleep(body["retry_after"])
    assert (await sign_in(anonymous_api, "alice", "alice-password"))[0] == 201
