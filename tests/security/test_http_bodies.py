"""Hostile JSON bodies: every one gets a clear 4xx with a message, never a 500 or a
traceback (the Api client asserts both on every answer)."""

from __future__ import annotations

import logging

import pytest
import tornado.httpclient
import tornado.web

from handlers.base import SESSION_COOKIE
from tests.conftest import Api

HOST = {"name": "h", "address": "127.0.0.1"}
PROJECT = {"name": "p", "repo_url": "https://example.com/r.git", "deploy_path": "/srv/p"}


async def test_a_body_nested_10000_levels_deep_gets_400_without_a_traceback(api, caplog):
    caplog.set_level(logging.DEBUG)
    status, body = await api.post("/api/hosts", raw=b"[" * 10_000 + b"]" * 10_000)
    assert status == 400 and "nested" in body["message"]
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert "Traceback" not in caplog.text


async def test_a_body_nested_just_past_the_limit_gets_400(api, services):
    depth = services.settings.json_max_depth + 1
    raw = b'{"name": ' + b'{"a": ' * (depth - 1) + b"1" + b"}" * (depth - 1) + b"}"
    status, body = await api.post("/api/hosts", raw=raw)
    assert status == 400 and "nested" in body["message"]


async def test_a_body_that_is_not_utf8_gets_400(api):
    status, body = await api.post("/api/hosts", raw=b'{"name": "\xff\xfe"}')
    assert status == 400 and "JSON" in body["message"]


async def test_a_lone_surrogate_in_a_string_gets_400(api):
    status, body = await api.post("/api/hosts", raw=b'{"name": "h", "address": "127.0.0.1", '
                                  b'"key_path": "/k\\ud800"}')
    assert status == 400 and "surrogate" in body["message"]


async def test_a_form_encoded_body_from_a_page_session_gets_415(base_url, services,
                                                              admin_token):
    session = await services.auth.create_session(await services.auth.user("admin"))
    cookie = tornado.web.create_signed_value(
        services.settings.cookie_secret, SESSION_COOKIE, session).decode()
    status, body = await Api(base_url, None).post(
        "/api/hosts", raw=b'{"name": "h", "address": "127.0.0.1"}',
        headers={"Content-Type": "application/x-www-form-urlencoded",
                 "Cookie": f"{SESSION_COOKIE}={cookie}; _xsrf=x", "X-XSRFToken": "x"})
    assert status == 415 and "application/json" in body["message"]


async def test_a_form_encoded_body_with_a_token_must_still_be_json(api):
    status, body = await api.post("/api/hosts", raw=b"name=h&address=127.0.0.1",
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 400 and "JSON" in body["message"]


async def test_curl_s_default_type_with_a_token_is_read_as_json(api):
    status, body = await api.post("/api/hosts", raw=b'{"name": "h", "address": "127.0.0.1"}',
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 201, body


async def test_a_text_plain_body_gets_415(api):
    status, _ = await api.post("/api/hosts", raw=b'{"name": "h"}',
                               headers={"Content-Type": "text/plain"})
    assert status == 415


async def test_a_body_over_the_size_limit_is_refused_before_it_is_read(
        base_url, admin_token, services):
    big = b'{"name": "' + b"x" * (services.settings.max_body_bytes + 10) + b'"}'
    response = await tornado.httpclient.AsyncHTTPClient().fetch(
        base_url + "/api/hosts", method="POST", body=big, raise_error=False,
        headers={"Authorization": f"Bearer {admin_token}",
                 "Content-Type": "application/json"})
    # Tornado answers 400 (or closes: 599 on the client side) before reading it: never a 500.
    assert response.code in (400, 413, 599)
    status, _ = await Api(base_url, admin_token).get("/api/hosts")
    assert status == 200


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
async def test_nan_and_infinity_get_400(api, raw):
    status, body = await api.post("/api/hosts", raw=b'{"name": "h", "address": "127.0.0.1", '
                                  b'"port": ' + raw + b"}")
    assert status == 400 and body["message"]


@pytest.mark.parametrize("number", [str(2**63), str(-2**63 - 1), "9" * 5000])
async def test_integers_beyond_int64_get_400(api, number):
    status, body = await api.post("/api/hosts", raw=b'{"name": "h", "address": "127.0.0.1", '
                                  b'"port": ' + number.encode() + b"}")
    assert status == 400 and "range" in body["message"]


async def test_duplicate_keys_get_400(api):
    status, body = await api.post("/api/hosts", raw=b'{"name": "h", "name": "-x", '
                                  b'"address": "127.0.0.1"}')
    assert status == 400 and "duplicate" in body["message"]


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
async def test_a_body_that_is_not_an_object_gets_400(api, raw):
    status, body = await api.post("/api/hosts", raw=raw)
    assert status == 400 and body["message"]


@pytest.mark.parametrize("field, value", [
    ("name", 7), ("name", ["h"]), ("name", {"$ne": 1}), ("address", 127), ("port", "22"),
    ("port", 22.5), ("port", True), ("port", 2**62), ("user", ["deploy"]), ("key_path", 5),
    ("groups", "web"), ("groups", [1]), ("groups", {"a": 1}), ("variables", ["A"]),
    ("variables", {"A": {"b": 1}}), ("variables", {"A": [1]}), ("jump_host", 5),
])
async def test_wrong_types_in_host_fields_get_400(api, field, value):
    status, body = await api.post("/api/hosts", {**HOST, field: value})
    assert status == 400 and body["message"]


@pytest.mark.parametrize("field, value", [
    ("name", 1), ("repo_url", ["https://example.com/r.git"]), ("deploy_path", 5),
    ("environment", {"a": 1}), ("keep_releases", "5"), ("keep_releases", 1e300),
    ("hooks", ["echo"]), ("hooks", {"after_release": 5}), ("health_check", "true"),
    ("health_check", {"command": 5}), ("health_check", {"url": "https://x", "retries": "3"}),
    ("health_check", {"url": "https://x", "timeout_s": 1e308}), ("strategy", "canary"),
    ("strategy", {"batches": "100%"}), ("strategy", {"batches": [[1]]}),
    ("strategy", {"parallel": "5"}), ("strategy", {"max_fail": [1]}), ("hosts", "web-1"),
    ("groups", [None]), ("submodules", "yes"), ("description", 5),
])
async def test_wrong_types_in_project_fields_get_400(api, field, value):
    status, body = await api.post("/api/projects", {**PROJECT, field: value})
    assert status == 400 and body["message"]


@pytest.mark.parametrize("body", [
    {"project": ["p"], "ref": "main"}, {"project": "p", "ref": 5},
    {"project": "p", "ref": "main", "hosts": "h"}, {"project": "p", "ref": "main",
                                                    "groups": {"a": 1}},
    {"project": "p", "ref": "main", "strategy": [1]},
])
async def test_wrong_types_in_a_release_get_4xx(api, body):
    await api.post("/api/projects", PROJECT)
    status, answer = await api.post("/api/releases", body)
    assert 400 <= status < 500 and answer["message"]


@pytest.mark.parametrize("value", ["yes", 1, "true", [True], {"a": 1}])
async def test_take_over_must_be_a_json_boolean(api, app_repo, value):
    await api.post("/api/hosts", HOST)
    await api.post("/api/projects", {**PROJECT, "repo_url": app_repo.url})
    status, body = await api.post("/api/releases", {
        "project": "p", "ref": "v1", "hosts": ["h"], "take_over": value})
    assert status == 400 and "take_over" in body["message"]


@pytest.mark.parametrize("body", [{"to": "3"}, {"to": 2**70}, {"to": [3]}, {"to": 1.5}])
async def test_wrong_types_in_a_rollback_get_4xx(api, body):
    status, answer = await api.post("/api/releases/1/rollback", body)
    assert 400 <= status < 500 and answer["message"]


@pytest.mark.parametrize("body", [{"fingerprint": 5}, {"fingerprint": ["SHA256:x"]}])
async def test_wrong_types_in_a_trust_get_4xx(api, body):
    await api.post("/api/hosts", HOST)
    status, answer = await api.post("/api/hosts/h/trust", body)
    assert 400 <= status < 500 and answer["message"]


@pytest.mark.parametrize("hosts", ["h", [1, 2], [[HOST]], {"a": HOST}])
async def test_wrong_types_in_a_host_import_get_400(api, hosts):
    status, body = await api.post("/api/hosts", {"hosts": hosts})
    assert status == 400 and body["message"]
