"""Sign-in throttling against the real server: per account, per address, Retry-After,
the right password after the wait, the login form, and bounded memory."""

from __future__ import annotations

import asyncio
import logging
import urllib.parse

import pytest
import tornado.httpclient

from services.settings import Settings
from services.team.throttle import SigninThrottle

# A long lockout where a test does not wait it out; a short one where it does.
LIMITS = {"signin_max_failures": 5, "signin_address_max_failures": 1000,
          "signin_window_s": 600.0, "signin_lockout_s": 600.0, "signin_lockout_max_s": 600.0}
SHORT = {**LIMITS, "signin_lockout_s": 2.0, "signin_lockout_max_s": 8.0}


@pytest.fixture
async def user(services) -> str:
    await services.auth.create_user("alice", "right-password", "viewer")
    return "alice"


async def sign_in(anonymous_api, name: str, password: str) -> tuple[int, dict]:
    return await anonymous_api.post("/api/session", {"name": name, "password": password})


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_a_brute_force_on_one_account_is_cut_off_with_429(anonymous_api, user):
    answers = [await sign_in(anonymous_api, user, f"guess-{n}") for n in range(50)]
    statuses = [status for status, _ in answers]
    assert statuses[:5] == [403] * 5
    assert set(statuses[5:]) == {429}
    _, body = answers[5]
    assert body["retry_after"] >= 1 and "try again in" in body["message"]


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_a_429_carries_retry_after_and_refuses_even_the_right_password(
        base_url, anonymous_api, user):
    for n in range(5):
        await sign_in(anonymous_api, user, f"guess-{n}")
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + "/api/session", method="POST", raise_error=False,
        headers={"Content-Type": "application/json"},
        body='{"name": "alice", "password": "right-password"}')
    assert response.code == 429
    assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("settings_overrides", [SHORT])
async def test_the_right_password_works_once_the_wait_is_over(anonymous_api, user):
    for n in range(5):
        await sign_in(anonymous_api, user, f"guess-{n}")
    status, body = await sign_in(anonymous_api, user, "right-password")
    assert status == 429
    await asyncio.sleep(body["retry_after"])
    status, body = await sign_in(anonymous_api, user, "right-password")
    assert status == 201 and body["user"] == "alice"


@pytest.mark.parametrize("settings_overrides", [SHORT])
async def test_lockouts_back_off(anonymous_api, user):
    for n in range(5):
        await sign_in(anonymous_api, user, f"guess-{n}")
    _, first = await sign_in(anonymous_api, user, "x")
    await asyncio.sleep(first["retry_after"])
    for n in range(5):
        await sign_in(anonymous_api, user, f"again-{n}")
    status, second = await sign_in(anonymous_api, user, "x")
    assert status == 429 and second["retry_after"] > first["retry_after"]


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_concurrent_guesses_cannot_slip_past_the_limit(anonymous_api, user):
    answers = await asyncio.gather(*(sign_in(anonymous_api, user, f"guess-{n}")
                                     for n in range(40)))
    statuses = [status for status, _ in answers]
    assert statuses.count(403) <= 5 and statuses.count(429) >= 35


@pytest.mark.parametrize("settings_overrides", [{
    **LIMITS, "signin_max_failures": 100, "signin_address_max_failures": 5}])
async def test_one_address_guessing_many_accounts_is_cut_off(anonymous_api, user):
    statuses = [(await sign_in(anonymous_api, f"user-{n}", "wrong-password"))[0]
                for n in range(5)]
    assert statuses == [403] * 5
    status, body = await sign_in(anonymous_api, user, "right-password")
    assert status == 429 and body["retry_after"] >= 1


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_failed_sign_ins_are_logged_without_the_password(anonymous_api, user, caplog):
    caplog.set_level(logging.WARNING, logger="ferry.auth")
    await sign_in(anonymous_api, user, "hunter2-secret")
    lines = [r.getMessage() for r in caplog.records if r.name == "ferry.auth"]
    assert any("alice" in line and "127.0.0.1" in line for line in lines), lines
    assert not any("hunter2-secret" in line for line in lines)


@pytest.mark.parametrize("settings_overrides", [LIMITS])
async def test_the_login_form_answers_429_with_retry_after(base_url, user):
    client = tornado.httpclient.AsyncHTTPClient()
    page = await client.fetch(base_url + "/login")
    xsrf = page.headers["Set-Cookie"].split("_xsrf=", 1)[1].split(";", 1)[0]
    codes = []
    for n in range(6):
        form = urllib.parse.urlencode({"name": "alice", "password": f"guess-{n}",
                                       "_xsrf": xsrf})
        response = await client.fetch(base_url + "/login", method="POST", body=form,
                                      headers={"Cookie": f"_xsrf={xsrf}"},
                                      raise_error=False, follow_redirects=False)
        codes.append(response.code)
    assert codes == [403] * 5 + [429]
    assert int(response.headers["Retry-After"]) >= 1
    assert b"try again in" in response.body


def test_a_flood_of_distinct_names_and_addresses_keeps_memory_bounded(settings):
    limited = settings.replace(signin_throttle_max_entries=100)
    throttle = SigninThrottle(limited, clock=lambda: 0.0)
    for n in range(5000):
        throttle.begin(f"name-{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}")
        throttle.end(f"name-{n}", f"10.{n // 65536}.{n // 256 % 256}.{n % 256}", ok=False)
    assert len(throttle.accounts) <= 100 and len(throttle.addresses) <= 100


def test_entries_expire_a_window_after_their_last_failure(settings: Settings):
    now = [0.0]
    throttle = SigninThrottle(settings.replace(signin_window_s=10.0), clock=lambda: now[0])
    throttle.begin("a", "10.0.0.1")
    throttle.end("a", "10.0.0.1", ok=False)
    now[0] = 11.0
    throttle.begin("b", "10.0.0.2")
    assert "a" not in throttle.accounts.entries and "10.0.0.1" not in throttle.addresses.entries
