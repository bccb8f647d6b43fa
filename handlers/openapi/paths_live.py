"""OpenAPI paths: events, chat and votes, the wall, the audit log, webhooks, notifications,
health and metrics."""

from __future__ import annotations

from handlers.openapi.schemas import INT, STR
from handlers.openapi.spec import listing, op, path_param, query, ref, websocket

ID, NAME, CHANNEL = path_param("id"), path_param("name"), path_param("channel")
AFTER = query("after", {"type": "integer", "minimum": 0})
WAIT = query("wait", {"type": "number", "minimum": 0, "maximum": 30})
TOPIC = query("topic", STR, "release:<id>, chat:<room> or wall")
WS_PROTOCOL = ('Send `{"op": "subscribe", "topic", "after"}` or `{"op": "unsubscribe", '
               '"topic"}`; receive `{"topic", "events": [Event]}` frames in order, or '
               '`{"error", "reason"}`.')

EVENTS = {
    "/api/events": {
        "get": op("Events of a topic after a seq: long-polling (wait > 0) or polling",
                  "events", access="member", params=(TOPIC, AFTER, WAIT),
                  answer=ref("EventPage")),
    },
    "/ws": {"get": websocket("The event stream over a WebSocket", "events", WS_PROTOCOL,
                             "member")},
}

CHAT = {
    "/api/chat/{room}/messages": {
        "parameters": [path_param("room")],
        "get": op("A page of a room's history, oldest first", "chat",
                  params=(query("before", INT), query("limit", INT)),
                  answer=ref("ChatPage")),
        "post": op("Say something (or run a /command)", "chat", ok=201,
                   body={"type": "object", "properties": {"text": STR},
                         "required": ["text"]}, answer=ref("ChatMessage"),
                   errors=(400, 401, 403, 404, 409, 429)),
    },
    "/api/releases/{id}/vote": {
        "parameters": [ID],
        "get": op("The release's go/no-go vote", "chat", answer=ref("Vote")),
        "post": op("Vote go or no-go (again to change it)", "chat", access="deployer",
                   body=ref("VoteInput"), answer=ref("Vote"),
                   errors=(400, 401, 403, 404, 409)),
    },
}

SCREENS = {
    "/api/wall": {"get": op("The wall's snapshot (a user or a wall link's key)", "wall",
                            access="public", answer=ref("Wall"),
                            params=(query("key", STR),))},
    "/api/wall/events": {"get": op("Long-polling of the wall topic", "wall", access="public",
                                   params=(AFTER, WAIT, query("key", STR)),
                                   answer=ref("EventPage"))},
    "/wall/ws": {"get": websocket("The wall topic over a WebSocket", "wall", WS_PROTOCOL,
                                  "public")},
    "/api/wall/links": {
        "get": op("Wall links", "wall", access="admin", answer=listing("links", "WallLink")),
        "post": op("Create a wall link (its URL holds a read-only key)", "wall",
                   access="admin", ok=201, answer=ref("WallLink"),
                   body={"type": "object", "properties": {"name": STR,
                                                          "show_chat": {"type": "boolean"}}}),
    },
    "/api/wall/links/{link_id}": {
        "parameters": [path_param("link_id")],
        "delete": op("Revoke a wall link", "wall", access="admin", ok=204),
    },
    "/api/releases/{id}/vote/screen": {
        "parameters": [ID],
        "get": op("The big-screen vote page's snapshot", "wall", access="public",
                  params=(query("key", STR),), answer={"type": "object"}),
    },
    "/api/releases/{id}/vote/events": {
        "parameters": [ID],
        "get": op("Long-polling of the vote screen's topics", "wall", access="public",
                  params=(TOPIC, AFTER, WAIT, query("key", STR)), answer=ref("EventPage")),
    },
    "/releases/{id}/vote/ws": {
        "parameters": [ID],
        "get": websocket("The vote screen's topics over a WebSocket", "wall", WS_PROTOCOL,
                         "public"),
    },
}

TOOLCHAIN = {
    "/api/audit": {"get": op("The audit log, newest first", "audit", access="admin", params=(
        query("actor", STR), query("project", STR), query("action", STR, "a prefix"),
        query("since", {"type": "string", "format": "date-time"}),
        query("until", {"type": "string", "format": "date-time"}), query("before", INT),
        query("limit", INT)), answer=ref("AuditPage"))},
    "/hooks/{provider}/{name}": {
        "parameters": [path_param("provider"), NAME],
        "post": op("A push from GitHub, GitLab or Gitea", "webhooks", access="signature",
                   body={"type": "object", "description": "the provider's push payload"},
                   ok=201, answer=ref("WebhookAnswer"), errors=(400, 401, 409, 413)),
    },
    "/api/projects/{name}/webhook": {
        "parameters": [NAME],
        "get": op("The project's webhook rules (never the secret)", "webhooks",
                  access="maintainer", answer=ref("WebhookConfig")),
        "put": op("Set rules; set or rotate the secret (shown once)", "webhooks",
                  access="maintainer", answer=ref("WebhookConfig"),
                  body={"type": "object", "properties": {
                      "rules": {"type": "array", "items": {"type": "object"}},
                      "secret": STR, "rotate_secret": {"type": "boolean"}}}),
    },
    "/api/projects/{name}/notifications": {
        "parameters": [NAME],
        "get": op("The project's notification channels", "notifications",
                  answer=listing("channels", "Channel")),
        "post": op("Add a channel", "notifications", access="maintainer", ok=201,
                   body=ref("ChannelInput"), answer=ref("Channel")),
    },
    "/api/projects/{name}/notifications/{channel}": {
        "parameters": [NAME, CHANNEL],
        "put": op("Change a channel", "notifications", access="maintainer",
                  body=ref("ChannelInput"), answer=ref("Channel")),
        "delete": op("Delete a channel", "notifications", access="maintainer", ok=204),
    },
    "/api/projects/{name}/notifications/{channel}/test": {
        "parameters": [NAME, CHANNEL],
        "post": op("Queue a test message", "notifications", access="maintainer", ok=202,
                   answer={"type": "object", "properties": {"queued": {"type": "boolean"}}}),
    },
    "/api/projects/{name}/notifications/{channel}/deliveries": {
        "parameters": [NAME, CHANNEL],
        "get": op("The channel's delivery log, newest first", "notifications",
                  params=(query("limit", INT),), answer=listing("deliveries", "Delivery")),
    },
    "/healthz": {"get": op("The process answers", "operations", access="public",
                           answer=ref("Status"), errors=())},
    "/readyz": {"get": op("Ready: database reachable, not shutting down", "operations",
                          access="public", answer=ref("Status"), errors=(503,))},
    "/metrics": {"get": op("Prometheus metrics (a metrics token, an admin, or its own "
                           "listener)", "operations", access="public",
                           media="text/plain", answer={"type": "string"},
                           errors=(401, 403, 404))},
    "/api/openapi.json": {"get": op("This document", "operations", access="public",
                                    answer={"type": "object"}, errors=())},
}

PATHS = {**EVENTS, **CHAT, **SCREENS, **TOOLCHAIN}
