"""Hostile query arguments on the release endpoints: digits from other scripts, huge,
negative and non-numeric numbers get a 4xx with a message, never a 500."""

from __future__ import annotations

import urllib.parse

import pytest

BAD_NUMBERS = ["\u00b2", "\u0661\u0662", "\uff11", "-1", "1e400", "nan", "x", str(2**64), ""]


@pytest.mark.parametrize("limit", BAD_NUMBERS)
async def test_a_bad_release_list_limit_gets_400(api, limit):
    status, body = await api.get("/api/releases?" + urllib.parse.urlencode({"limit": limit}))
    assert status == 400 and "limit" in body["message"]


@pytest.mark.parametrize("to", BAD_NUMBERS)
async def test_a_bad_rollback_target_gets_4xx(api, to):
    status, body = await api.get("/api/releases/1/rollback?" + urllib.parse.urlencode({"to": to}))
    assert status in (400, 404) and body["message"]


@pytest.mark.parametrize("name", ["after", "limit"])
@pytest.mark.parametrize("value", BAD_NUMBERS)
async def test_a_bad_host_log_cursor_gets_4xx(api, name, value):
    query = urllib.parse.urlencode({name: value})
    status, body = await api.get(f"/api/releases/1/hosts/h/log?{query}")
    assert status in (400, 404) and body["message"]


@pytest.mark.parametrize("path", ["/api/releases/\u0661", "/api/releases/99999999999999999999",
                                  "/api/releases/0", "/api/hosts/%0a", "/api/projects/p%00"])
async def test_a_strange_id_in_the_path_gets_404(api, path):
    status, body = await api.get(path)
    assert status == 404 and body["message"]
