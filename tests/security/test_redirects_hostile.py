"""Hostile redirect targets: after sign-in and after the language switch, Ferry only ever
redirects to a path on its own site; CR/LF, "//host", backslashes and absolute URLs go
to "/" and never answer 500 or split the Location header."""

from __future__ import annotations

import urllib.parse

import pytest
import tornado.httpclient

from handlers.base import same_site_path

HOSTILE = ["%0d%0a", "/x%0d%0aSet-Cookie:%20evil=1", "//evil.example", "/%5Cevil.example",
           "%2F%5Cevil.example", "%2F%2Fevil.example", "/%09/evil.example", "/%0a/evil.example",
           "https://evil.example/", "javascript:alert(1)", "%00", "/%e2%80%a8/evil"]


async def fetch(base_url: str, path: str, **kwargs) -> tornado.httpclient.HTTPResponse:
    return await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, raise_error=False, follow_redirects=False, **kwargs)


async def xsrf_cookie(base_url: str) -> str:
    page = await fetch(base_url, "/login")
    return page.headers["Set-Cookie"].split("_xsrf=", 1)[1].split(";", 1)[0]


@pytest.fixture
async def sign_in_to(base_url, services):
    """sign_in_to(next) → the sign-in form's answer, for user alice with her password."""
    await services.auth.create_user("alice", "right-password", "viewer")
    xsrf = await xsrf_cookie(base_url)

    async def post(next_query: str) -> tornado.httpclient.HTTPResponse:
        form = urllib.parse.urlencode({"name": "alice", "password": "right-password",
                                       "_xsrf": xsrf})
        return await fetch(base_url, f"/login?next={next_query}", method="POST", body=form,
                           headers={"Cookie": f"_xsrf={xsrf}"})
    return post


@pytest.mark.parametrize("target", HOSTILE)
async def test_a_hostile_next_after_sign_in_redirects_home(sign_in_to, target):
    response = await sign_in_to(target)
    assert response.code == 302 and response.headers["Location"] == "/"
    assert "evil" not in str(response.headers.get_list("Set-Cookie"))


async def test_a_same_site_next_after_sign_in_is_kept(sign_in_to):
    response = await sign_in_to(urllib.parse.quote("/releases/12?tab=log", safe=""))
    assert response.code == 302 and response.headers["Location"] == "/releases/12?tab=log"


@pytest.mark.parametrize("target", HOSTILE)
async def test_the_login_page_with_a_hostile_next_renders_a_safe_form(base_url, target):
    response = await fetch(base_url, f"/login?next={target}")
    assert response.code == 200
    assert b'action="/login?next=%2F"' in response.body


@pytest.mark.parametrize("target", HOSTILE)
async def test_the_language_switch_with_a_hostile_next_redirects_home(base_url, target):
    xsrf = await xsrf_cookie(base_url)
    response = await fetch(base_url, "/locale", method="POST",
                           body=f"locale=en_US&_xsrf={xsrf}&next={target}",
                           headers={"Cookie": f"_xsrf={xsrf}"})
    assert response.code == 302 and response.headers["Location"] == "/"


@pytest.mark.parametrize("target", ["/\u00e9t\u00e9", "/a\u2028b", "/a b", "/a\\b", None, 5])
def test_same_site_path_keeps_headers_ascii_and_single_line(target):
    path = same_site_path(target)
    assert path.startswith("/") and not path.startswith("//")
    assert path.isascii() and not any(ch.isspace() or ch == "\\" for ch in path)
