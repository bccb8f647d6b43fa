"""Component schemas of Ferry's OpenAPI document: the objects the JSON API reads and
answers. Objects stay open (additionalProperties) so a field added later does not make
old clients wrong; the listed fields are the ones a client can rely on."""

from __future__ import annotations

from handlers.openapi.spec import ref

STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
TIME = {"type": ["string", "null"], "format": "date-time"}
NAMES = {"type": "array", "items": STR}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
RELEASE_STATES = ["pending", "scheduled", "awaiting_approval", "running", "paused",
                  "succeeded", "failed", "cancelled", "rolled_back", "interrupted", "rejected",
                  "expired"]


def obj(properties: dict, required: tuple[str, ...] = ()) -> dict:
    schema = {"type": "object", "properties": properties, "additionalProperties": True}
    if required:
        schema["required"] = list(required)
    return schema


SCHEMAS: dict[str, dict] = {
    "Error": obj({"message": STR, "reason": STR, "retry_after": INT}, ("message", "reason")),
    "Session": obj({"token": STR, "user": ref("User")}, ("token",)),
    "Credentials": obj({"name": STR, "password": STR}, ("name", "password")),
    "User": obj({"name": STR, "role": {"type": "string", "enum": [
        "member", "viewer", "deployer", "admin"]}, "disabled": BOOL, "created_at": TIME,
        "last_signin_at": TIME}, ("name", "role")),
    "UserInput": obj({"name": STR, "password": STR, "role": STR}, ("name", "password")),
    "UserChange": obj({"role": STR, "password": STR, "disabled": BOOL}),
    "Me": obj({"name": STR, "role": STR, "projects": {"type": "object",
                                                      "additionalProperties": STR}}),
    "Token": obj({"id": INT, "name": STR, "created_at": TIME, "expires_at": TIME,
                  "last_used_at": TIME, "token": {"type": "string",
                                                  "description": "only in the answer "
                                                                 "that creates it"}}),
    "TokenInput": obj({"name": STR, "expires_at": TIME,
                       "expires_in_days": {"type": "integer", "minimum": 1}}),
    "Host": obj({"name": STR, "address": STR, "port": INT, "user": STR,
                 "key_path": {"type": ["string", "null"]}, "groups": NAMES,
                 "variables": {"type": "object", "additionalProperties": STR},
                 "jump_host": {"type": ["string", "null"]},
                 "host_key_fingerprint": {"type": ["string", "null"]},
                 "last_release": {"type": ["object", "null"]}}, ("name", "address")),
    "HostsInput": {"oneOf": [ref("Host"), obj({"hosts": {"type": "array",
                                                          "items": ref("Host")}}, ("hosts",)),
                             obj({"inventory": STR, "format": {"type": "string", "enum": [
                                 "auto", "ini", "yaml"]}}, ("inventory",))]},
    "HostKey": obj({"host": STR, "address": STR, "port": INT, "key_type": STR,
                    "fingerprint": STR}),
    "Project": obj({"name": STR, "repo_url": STR, "environment": STR, "deploy_path": STR,
                    "keep_releases": INT, "hooks": {"type": "object",
                                                    "additionalProperties": STR},
                    "health_check": ANY_OBJECT, "strategy": ANY_OBJECT, "hosts": NAMES,
                    "groups": NAMES, "submodules": BOOL, "approval": ANY_OBJECT,
                    "freezes": {"type": "array", "items": ANY_OBJECT}}, ("name",)),
    "Refs": obj({"branches": {"type": "array", "items": ANY_OBJECT},
                 "tags": {"type": "array", "items": ANY_OBJECT}, "fetched_at": TIME,
                 "stale": BOOL}),
    "Commit": obj({"sha": STR, "author": STR, "date": TIME, "subject": STR}),
    "Member": obj({"user": STR, "role": {"type": "string", "enum": [
        "viewer", "deployer", "maintainer"]}}),
    "Strategy": obj({"preset": {"type": "string", "enum": ["parallel", "canary"]},
                     "batches": {"type": "array"}, "parallel": INT,
                     "pause_after": {"type": "array", "items": INT},
                     "max_fail": {"type": ["integer", "string"]}, "auto_rollback": BOOL,
                     "vote": ANY_OBJECT}),
    "ReleaseInput": obj({"project": STR, "ref": STR, "hosts": NAMES, "groups": NAMES,
                         "strategy": ref("Strategy"), "take_over": BOOL,
                         "not_before": TIME, "override_freeze": STR}, ("project", "ref")),
    "HostRun": obj({"host": STR, "state": STR, "stage": {"type": ["string", "null"]},
                    "reason": {"type": ["string", "null"]}, "stages": ANY_OBJECT}),
    "Release": obj({"id": INT, "project": STR, "environment": STR, "kind": STR, "ref": STR,
                    "sha": {"type": ["string", "null"]},
                    "state": {"type": "string", "enum": RELEASE_STATES},
                    "counts": {"type": "object", "additionalProperties": INT},
                    "created_by": STR, "created_at": TIME, "started_at": TIME,
                    "finished_at": TIME, "duration_ms": {"type": ["integer", "null"]},
                    "host_runs": {"type": "array", "items": ref("HostRun")},
                    "seq": INT}, ("id", "project", "state")),
    "Releases": obj({"releases": {"type": "array", "items": ref("Release")}}),
    "LogPage": obj({"release_id": INT, "host": STR, "lines": {"type": "array", "items": obj(
        {"n": INT, "ts": {"type": "number"}, "stage": STR, "line": STR})}, "next": INT,
        "more": BOOL}),
    "Event": obj({"topic": STR, "seq": INT, "type": STR, "ts": {"type": "number"},
                  "data": ANY_OBJECT}, ("topic", "seq", "type")),
    "EventPage": obj({"topic": STR, "events": {"type": "array", "items": ref("Event")},
                      "next": INT}),
    "ChatMessage": obj({"id": INT, "room": STR, "user": STR, "text": STR,
                        "ts": {"type": "number"}, "kind": {"type": "string", "enum": [
                            "message", "system"]}, "reply": STR}),
    "ChatPage": obj({"messages": {"type": "array", "items": ref("ChatMessage")},
                     "before": {"type": ["integer", "null"]}, "head": INT}),
    "Vote": obj({"release_id": INT, "state": {"type": "string", "enum": [
        "open", "passed", "failed", "expired"]}, "rules": ANY_OBJECT, "deadline": TIME,
        "votes": {"type": "array", "items": obj({"user": STR, "choice": STR,
                                                  "comment": STR, "ts": TIME})}}),
    "VoteInput": obj({"choice": {"type": "string", "enum": ["go", "no_go"]},
                      "comment": STR}, ("choice",)),
    "Approval": obj({"required": INT, "approvals": {"type": "array", "items": ANY_OBJECT},
                     "awaiting": NAMES, "expires_at": TIME}),
    "Wall": obj({"hosts": {"type": "array", "items": ANY_OBJECT},
                 "releases": {"type": "array", "items": ANY_OBJECT},
                 "votes": {"type": "array", "items": ANY_OBJECT}, "seq": INT}),
    "WallLink": obj({"id": INT, "name": STR, "show_chat": BOOL, "created_at": TIME,
                     "url": STR}),
    "AuditEntry": obj({"id": INT, "ts": TIME, "actor": STR, "address": STR, "via": STR,
                       "action": STR, "target": STR, "project": {"type": ["string", "null"]},
                       "details": ANY_OBJECT}),
    "AuditPage": obj({"entries": {"type": "array", "items": ref("AuditEntry")},
                      "next_before": {"type": ["integer", "null"]}}),
    "WebhookConfig": obj({"project": STR, "rules": {"type": "array", "items": ANY_OBJECT},
                          "secret_set": BOOL, "secret": STR, "endpoints": ANY_OBJECT}),
    "WebhookAnswer": obj({"message": STR, "release_id": INT}, ("message",)),
    "Channel": obj({"id": STR, "name": STR, "kind": {"type": "string", "enum": [
        "webhook", "slack", "dingtalk", "wecom", "feishu"]}, "url": STR, "events": NAMES,
        "rate_per_min": INT, "enabled": BOOL, "secret_set": BOOL}),
    "ChannelInput": obj({"name": STR, "kind": STR, "url": STR, "secret": STR,
                         "events": NAMES, "rate_per_min": INT, "enabled": BOOL}),
    "Delivery": obj({"id": STR, "ts": TIME, "event": STR, "status": STR, "attempts": INT,
                     "code": INT, "error": STR}),
    "Status": obj({"status": STR}, ("status",)),
}
