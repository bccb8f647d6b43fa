"""Hostile credentials: forged and over-long tokens, tokens in the query string, tampered,
foreign-signed and expired session cookies, and control characters in a token's note."""

from __future__ import annotations

from datetime import timedelta

import pytest
import tornado.web

from handlers.base import SESSION_COOKIE
from services.store import utcnow
from tests.conftest import Api


def signed_cookie(secret: str, value: str) -> str:
    return tornado.web.create_signed_value(secret, SESSION_COOKIE, value).decode()


async def me_with_cookie(base_url: str, cookie: str) -> int:
    status, _ = await Api(base_url, None).get("/api/me",
                                               headers={"Cookie": f"{SESSION_COOKIE}={cookie}"})
    return status


async def test_a_forged_bearer_token_gets_401(base_url):
    status, body = await Api(base_url, "fy_" + "A" * 43).get("/api/me")
    assert status == 401 and body["message"]


async def test_a_real_token_with_one_character_changed_gets_401(base_url, admin_token):
    forged = admin_token[:-1] + ("A" if admin_token[-1] != "A" else "B")
    status, _ = await Api(base_url, forged).get("/api/me")
    assert status == 401


@pytest.mark.parametrize("name", ["token", "access_token", "_token", "authorization"])
async def test_a_token_in_the_query_string_is_not_accepted(base_url, admin_token, name):
    status, _ = await Api(base_url, None).get(f"/api/me?{name}={admin_token}")
    assert status == 401


async def test_a_session_cookie_with_a_tampered_signature_is_anonymous(
        base_url, services, admin_token):
    session = await services.auth.create_session(await services.auth.user("admin"))
    cookie = signed_cookie(services.settings.cookie_secret, session)
    assert await me_with_cookie(base_url, cookie) == 200
    tampered = cookie[:-4] + ("0000" if not cookie.endswith("0000") else "1111")
    assert await me_with_cookie(base_url, tampered) == 401


async def test_a_session_cookie_signed_with_another_secret_is_anonymous(
        base_url, services, admin_token):
    session = await services.auth.create_session(await services.auth.user("admin"))
    assert await me_with_cookie(base_url, signed_cookie("not-the-secret", session)) == 401


async def test_a_validly_signed_cookie_for_an_unknown_session_is_anonymous(base_url, services):
    cookie = signed_cookie(services.settings.cookie_secret, "made-up-session")
    assert await me_with_cookie(base_url, cookie) == 401


async def test_an_expired_session_is_anonymous_even_with_a_valid_cookie(
        base_url, services, admin_token):
    session = await services.auth.create_session(await services.auth.user("admin"))
    await services.store.sessions.update_many(
        {}, {"$set": {"expires_at": utcnow() - timedelta(seconds=1)}})
    cookie = signed_cookie(services.settings.cookie_secret, session)
    assert await me_with_cookie(base_url, cookie) == 401


@pytest.mark.parametrize("note", ["ci\x00runner", "line\nbreak", "bell\x07", "esc\x1b[2J",
                                  "del\x7f", "\u2028"])
async def test_a_token_note_with_control_characters_is_refused(api, services, note):
    before = await services.store.tokens.count_documents({})
    status, body = await api.post("/api/tokens", {"note": note})
    assert status == 400 and "note" in body["message"]
    assert await services.store.tokens.count_documents({}) == before


@pytest.mark.parametrize("note", [5, ["a"], {"a": 1}, "x" * 201])
async def test_a_token_note_of_the_wrong_type_or_size_is_refused(api, note):
    status, body = await api.post("/api/tokens", {"note": note})
    assert status == 400 and "note" in body["message"]


async def test_a_plain_token_note_is_kept(api, services):
    status, body = await api.post("/api/tokens", {"note": "deploy bot \u00e9"})
    assert status == 201 and body["token"].startswith("fy_")
    # "note" is the older name of a token's "name", which is what is stored
    assert await services.store.tokens.count_documents({"name": "deploy bot \u00e9"}) == 1
