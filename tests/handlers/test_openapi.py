"""The OpenAPI document: valid OpenAPI 3.1, and complete — every JSON, WebSocket and
webhook route of the routes table, with each of its verbs, is in it."""

from __future__ import annotations

import itertools
import json
import re

import pytest
import tornado.httpclient
import tornado.web
import tornado.websocket
from openapi_spec_validator import validate

from handlers import ROUTES
from handlers.base import ApiHandler
from handlers.openapi import document

VERBS = ("get", "post", "put", "delete", "patch")
GROUP = re.compile(r"\(([^()]*)\)")


def templates(pattern: str) -> list[str]:
    """A route's regex as OpenAPI path shapes, every parameter written `{}`; a group of
    literal alternatives ((cancel|promote)) becomes one path per alternative."""
    parts, choices, last = [], [], 0
    for match in GROUP.finditer(pattern):
        parts.append(pattern[last:match.start()])
        inner = match.group(1)
        literal = re.fullmatch(r"[a-z]+(\|[a-z]+)+", inner)
        choices.append(inner.split("|") if literal else ["{}"])
        last = match.end()
    parts.append(pattern[last:])
    shapes = []
    for combo in itertools.product(*choices):
        shapes.append("".join(p + c for p, c in zip(parts, [*combo, ""], strict=True))
                      .replace("\\", ""))
    return shapes


def documented() -> dict[str, dict]:
    paths = json.loads(document())["paths"]
    return {re.sub(r"\{[^}]+\}", "{}", path): item for path, item in paths.items()}


def api_routes() -> list[tuple[str, type]]:
    return [(route[0], route[1]) for route in ROUTES
            if isinstance(route[1], type) and issubclass(
                route[1], ApiHandler | tornado.websocket.WebSocketHandler)
            and route[0] != r".*"]


def verbs_of(handler: type) -> list[str]:
    if issubclass(handler, tornado.websocket.WebSocketHandler):
        return ["get"]
    return [verb for verb in VERBS
            if getattr(handler, verb) is not getattr(tornado.web.RequestHandler, verb)]


def test_the_document_is_valid_openapi_3_1():
    spec = json.loads(document())
    assert spec["openapi"].startswith("3.1")
    validate(spec)


@pytest.mark.parametrize(("pattern", "handler"), api_routes(),
                         ids=[pattern for pattern, _ in api_routes()])
def test_every_api_route_and_verb_is_documented(pattern, handler):
    paths = documented()
    for shape in templates(pattern):
        assert shape in paths, f"{pattern} ({handler.__name__}) is not in the OpenAPI document"
        for verb in verbs_of(handler):
            assert verb in paths[shape], f"{verb.upper()} {shape} is not documented"


def test_there_are_api_routes_to_check():
    assert len(api_routes()) > 40


async def test_the_document_is_served_to_anyone(base_url):
    response = await tornado.httpclient.AsyncHTTPClient().fetch(base_url + "/api/openapi.json")
    assert response.headers["Content-Type"].startswith("application/json")
    validate(json.loads(response.body))


async def test_the_reference_page_uses_swagger_ui_from_node_modules(base_url, api):
    client = tornado.httpclient.AsyncHTTPClient()
    bundle = await client.fetch(base_url + "/vendor/swagger-ui/swagger-ui-bundle.js")
    assert bundle.code == 200 and len(bundle.body) > 100_000
    status, _ = await api.get("/api/openapi.json")
    assert status == 200
