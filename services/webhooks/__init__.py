"""Git webhooks in: a project's webhook secret and rules, and pushes turned into releases.

Owns the `webhooks` collection (one document per project: secret, rules) and
`webhook_deliveries` (delivery ids seen, kept `webhook_delivery_ttl_s`, so a replayed
delivery creates nothing). A push that matches a rule goes through the release gates like
any release (approval, freeze windows), with the pusher named in the payload as initiator.
An unsigned or wrongly signed request learns nothing, not even whether the project exists.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from services.errors import FerryError, Invalid
from services.registry import validation as check
from services.settings import Settings
from services.store import Store, utcnow
from services.team.auth import User
from services.webhooks import providers

log = logging.getLogger("ferry.webhooks")
RULE_KEYS = {"branch", "tag", "strategy", "hosts", "groups"}
PUSHER = re.compile(r"[^A-Za-z0-9_.@-]")
CreateRelease = Callable[[User, dict], Awaitable[dict]]


class WebhookRefused(FerryError):
    """No valid signature: the same answer whether or not the project exists."""

    status = 401


@dataclass(frozen=True)
class Outcome:
    """What the handler answers and audits."""

    status: int
    body: dict
    pusher: str | None = None
    release: dict | None = None


class WebhookService:
    def __init__(self, settings: Settings, store: Store, create_release: CreateRelease,
                 project_exists: Callable[[str], Awaitable[bool]]) -> None:
        self.settings = settings
        self.configs = store.db.webhooks
        self.deliveries = store.db.webhook_deliveries
        self.create_release = create_release
        self.project_exists = project_exists

    async def open(self) -> None:
        await self.configs.create_index("project", unique=True)
        await self.deliveries.create_index("seen_at",
                                           expireAfterSeconds=self.settings.webhook_delivery_ttl_s)

    # -- configuration (maintainers) ------------------------------------------------------

    async def get(self, project: str) -> dict:
        doc = await self.configs.find_one({"project": project})
        return _public(project, doc)

    async def configure(self, project: str, body: dict) -> dict:
        """Set rules and/or the secret. Ferry makes a secret when none is set or on
        `rotate_secret`; the answer shows a new secret once (never again)."""
        unknown = set(body) - {"rules", "secret", "rotate_secret"}
        if unknown:
            raise Invalid(f"unknown webhook field(s): {', '.join(sorted(unknown))}")
        if not await self.project_exists(project):
            raise Invalid(f"no project named {project!r}")
        current = await self.configs.find_one({"project": project}) or {}
        changes: dict[str, Any] = {}
        if "rules" in body:
            changes["rules"] = self._rules(body["rules"])
        shown = None
        if "secret" in body:
            changes["secret"] = check.text(body["secret"], "secret", 256, line=True)
            if len(changes["secret"]) < 16:
                raise Invalid("secret must be at least 16 characters")
        elif check.boolean(body.get("rotate_secret", False), "rotate_secret") or \
                not current.get("secret"):
            changes["secret"] = shown = secrets.token_urlsafe(32)
        changes["updated_at"] = utcnow()
        await self.configs.update_one({"project": project}, {"$set": changes}, upsert=True)
        result = _public(project, {**current, **changes})
        if shown:
            result["secret"] = shown
        return result

    def _rules(self, rules: Any) -> list[dict]:
        if not isinstance(rules, list) or len(rules) > self.settings.webhook_rules_max:
            raise Invalid(f"rules must be a list of at most {self.settings.webhook_rules_max}")
        result = []
        for number, rule in enumerate(rules, 1):
            if not isinstance(rule, dict) or set(rule) - RULE_KEYS or \
                    len({"branch", "tag"} & set(rule)) != 1:
                raise Invalid(f"rule {number}: one of branch or tag (a pattern such as main "
                              "or v*), and optionally strategy, hosts, groups")
            kind = "branch" if "branch" in rule else "tag"
            clean = {kind: check.text(rule[kind], f"rule {number} {kind}", 200, line=True)}
            if "strategy" in rule:
                if not isinstance(rule["strategy"], dict):
                    raise Invalid(f"rule {number}: strategy must be an object")
                clean["strategy"] = rule["strategy"]
            for key in ("hosts", "groups"):
                if key in rule:
                    clean[key] = check.name_list(rule[key], f"rule {number} {key}")
            result.append(clean)
        return result

    # -- deliveries ------------------------------------------------------------------------

    async def receive(self, provider: str, project: str, headers: dict[str, str],
                      body: bytes) -> Outcome:
        """Check the signature, then the delivery id, then turn a push into a release."""
        if provider not in providers.PROVIDERS:
            raise WebhookRefused("unknown provider")
        doc = await self.configs.find_one({"project": project})
        # An unknown project is checked against a random secret: the same work and answer.
        secret = doc["secret"] if doc and doc.get("secret") else secrets.token_urlsafe(32)
        if not providers.signature_holds(provider, secret, headers, body) or not doc:
            raise WebhookRefused("the webhook signature is missing or does not match")
        event = providers.event_name(provider, headers)
        if event == "ping":
            return Outcome(200, {"message": "pong"})
        delivery = providers.delivery_id(provider, headers)
        if delivery is None:
            raise Invalid("the delivery id header is missing")
        try:
            await self.deliveries.insert_one({"_id": f"{provider}:{project}:{delivery}",
                                              "seen_at": utcnow()})
        except DuplicateKeyError:
            return Outcome(200, {"message": "delivery already received; nothing done"})
        if event != "push":
            return Outcome(202, {"message": f"event {event!r} ignored"})
        push = providers.read_push(provider, _payload(body))
        if push is None:
            return Outcome(202, {"message": "not a branch or tag push; ignored"})
        pusher = PUSHER.sub("", push.pusher)[:64] or "unknown"
        if push.deleted:
            return Outcome(202, {"message": f"{push.kind} {push.name} deleted; ignored"}, pusher)
        rule = _matching_rule(doc.get("rules") or [], push)
        if rule is None:
            return Outcome(202, {"message": f"no rule for {push.kind} {push.name}"}, pusher)
        release = await self.create_release(
            User(pusher, "deployer", via=f"webhook:{provider}"),
            _release_body(project, push, rule))
        log.info("%s push of %s %s by %s: release %s", provider, push.kind, push.name, pusher,
                 release["id"])
        return Outcome(201, {"message": "release created", "release_id": release["id"]},
                       pusher, release)


def _payload(body: bytes) -> dict:
    try:
        payload = json.loads(body)
    except ValueError:
        raise Invalid("the payload is not JSON") from None
    if not isinstance(payload, dict):
        raise Invalid("the payload is not a JSON object")
    return payload


def _matching_rule(rules: list[dict], push: providers.Push) -> dict | None:
    for rule in rules:
        pattern = rule.get(push.kind)
        if pattern is not None and fnmatch.fnmatchcase(push.name, pattern):
            return rule
    return None


def _release_body(project: str, push: providers.Push, rule: dict) -> dict:
    # A branch deploys exactly the commit pushed (a later push cannot slip in); a tag by name.
    body: dict[str, Any] = {"project": project,
                            "ref": push.sha if push.kind == "branch" else push.name}
    for key in ("strategy", "hosts", "groups"):
        if key in rule:
            body[key] = rule[key]
    return body


def _public(project: str, doc: dict | None) -> dict:
    doc = doc or {}
    return {"project": project, "rules": doc.get("rules", []),
            "secret_set": bool(doc.get("secret")),
            "endpoints": {provider: f"/hooks/{provider}/{project}"
                          for provider in providers.PROVIDERS}}
