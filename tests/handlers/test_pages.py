"""HTML pages over HTTP: an unknown object is the site's 404 page, not an empty page."""

from __future__ import annotations

import pytest
import tornado.httpclient


async def fetch(base_url: str, token: str, path: str) -> tornado.httpclient.HTTPResponse:
    return await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + path, headers={"Authorization": f"Bearer {token}"}, raise_error=False)


@pytest.mark.parametrize("release_id", ["9999", "99999999999999999999999"])
async def test_an_unknown_release_page_is_the_sites_404_page(base_url, admin_token, release_id):
    page = await fetch(base_url, admin_token, f"/releases/{release_id}")
    project = await fetch(base_url, admin_token, "/projects/nope")
    assert page.code == project.code == 404
    assert page.headers["Content-Type"].startswith("text/html")
    assert b'class="error panel"' in page.body and b'class="error panel"' in project.body
    assert f"no release {release_id}".encode() in page.body
