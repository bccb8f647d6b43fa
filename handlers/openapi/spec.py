"""Building blocks of Ferry's OpenAPI document: parameters, bodies, answers, operations.

The document is maintained by hand next to the routes table (paths_*.py), in these terms,
and tests/handlers/test_openapi.py fails when a JSON, WebSocket or webhook route of the
table — or one of its verbs — is missing from it.
"""

from __future__ import annotations

from typing import Any

ERRORS = {400: "Bad input (the message says what)", 401: "Not signed in",
          403: "Not allowed (the message says which role is needed)",
          404: "No such thing", 409: "Conflict (the message says why)",
          413: "Body too large", 429: "Too many requests (see Retry-After)",
          503: "Shutting down or not ready"}

PARAMETERS: dict[str, dict] = {
    "id": {"name": "id", "in": "path", "required": True, "description": "A release id",
           "schema": {"type": "integer", "minimum": 1}},
    "name": {"name": "name", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}},
    "host": {"name": "host", "in": "path", "required": True, "description": "A host name",
             "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}},
    "user": {"name": "user", "in": "path", "required": True, "description": "A user name",
             "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$"}},
    "room": {"name": "room", "in": "path", "required": True,
             "description": "lobby, release-<id> or project-<name>",
             "schema": {"type": "string", "maxLength": 200}},
    "token_id": {"name": "token_id", "in": "path", "required": True,
                 "schema": {"type": "integer"}},
    "link_id": {"name": "link_id", "in": "path", "required": True,
                "schema": {"type": "integer"}},
    "channel": {"name": "channel", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[0-9a-f]{24}$"}},
    "provider": {"name": "provider", "in": "path", "required": True,
                 "schema": {"type": "string", "enum": ["github", "gitlab", "gitea"]}},
}


def ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def listing(key: str, item: str) -> dict:
    """An object with one list: {"hosts": [Host]}."""
    return {"type": "object", "required": [key],
            "properties": {key: {"type": "array", "items": ref(item)}}}


def query(name: str, schema: dict, description: str = "") -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema,
            "description": description}


def path_param(name: str) -> dict:
    return {"$ref": f"#/components/parameters/{name}"}


def op(summary: str, tag: str, *, access: str = "viewer", body: dict | None = None,
       ok: int = 200, answer: dict | None = None, params: tuple = (),
       errors: tuple[int, ...] = (400, 401, 403, 404), media: str = "application/json",
       description: str = "") -> dict:
    """One operation. `access`: "public", a role, or "signature" (webhooks)."""
    operation: dict[str, Any] = {
        "summary": summary, "tags": [tag],
        "description": (description + "\n\n" if description else "") + _who(access),
        "responses": {str(ok): _content(answer, media, "OK")},
    }
    if params:
        operation["parameters"] = list(params)
    if body is not None:
        operation["requestBody"] = {"required": True,
                                    "content": {"application/json": {"schema": body}}}
    for status in errors:
        if access == "public" and status in (401, 403):
            continue
        operation["responses"][str(status)] = {
            "description": ERRORS[status],
            "content": {"application/json": {"schema": ref("Error")}}}
    if access in ("public", "signature"):
        operation["security"] = []
    return operation


def websocket(summary: str, tag: str, description: str, access: str = "viewer") -> dict:
    return {"summary": summary, "tags": [tag],
            "description": description + "\n\n" + _who(access),
            "responses": {"101": {"description": "Switching Protocols: JSON messages both "
                                                 "ways, as described"}},
            **({"security": []} if access == "public" else {})}


def _content(schema: dict | None, media: str, description: str) -> dict:
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {media: {"schema": schema}}}


def _who(access: str) -> str:
    if access == "public":
        return "Open to anyone."
    if access == "signature":
        return "Authenticated by the provider's signature over the body (no session)."
    return f"Requires the `{access}` role (globally or on the project)."
