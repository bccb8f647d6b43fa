"""What each git provider sends: how its push is signed, its delivery id, and what was
pushed. Every comparison of a secret or signature is constant-time (hmac.compare_digest).

- GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`,
  `X-GitHub-Delivery`, `X-GitHub-Event: push` (`ping` on creation).
- Gitea (and Forgejo): `X-Gitea-Signature: <hex HMAC-SHA256 of the raw body>`
  (`X-Forgejo-Signature`), `X-Gitea-Delivery`, `X-Gitea-Event: push`.
- GitLab: `X-Gitlab-Token: <the secret>`; or, where GitLab signs (a signing token), the
  Standard Webhooks headers `webhook-id`, `webhook-timestamp` and `webhook-signature:
  v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, which then must hold.
  `X-Gitlab-Event-UUID` (or `webhook-id`, `Idempotency-Key`) is the delivery id;
  `X-Gitlab-Event: Push Hook` / `Tag Push Hook`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from dataclasses import dataclass

PROVIDERS = ("github", "gitlab", "gitea")
ZERO_SHA = "0" * 40
SIGNED_TIMESTAMP_TOLERANCE_S = 300


@dataclass(frozen=True)
class Push:
    """A push as Ferry cares about it."""

    kind: str            # "branch" or "tag"
    name: str            # main, v1.2.0
    sha: str             # the commit pushed ("after")
    pusher: str
    deleted: bool


def _hmac_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def signature_holds(provider: str, secret: str, headers: dict[str, str], body: bytes,
                    now: float | None = None) -> bool:
    """True when the request carries a valid signature (or token) for `secret`."""
    if provider == "github":
        sent = headers.get("x-hub-signature-256", "")
        return sent.startswith("sha256=") and _same(sent[7:], _hmac_hex(secret, body))
    if provider == "gitea":
        sent = headers.get("x-gitea-signature") or headers.get("x-forgejo-signature") or ""
        return bool(sent) and _same(sent, _hmac_hex(secret, body))
    if provider == "gitlab":
        if "webhook-signature" in headers:
            return _standard_signature_holds(secret, headers, body, now or time.time())
        sent = headers.get("x-gitlab-token", "")
        return bool(sent) and _same(sent, secret)
    return False


def _standard_signature_holds(secret: str, headers: dict[str, str], body: bytes,
                              now: float) -> bool:
    """Standard Webhooks (as GitLab's signing token sends): a fresh timestamp and one of the
    space-separated `v1,<base64>` signatures matching."""
    webhook_id, stamp = headers.get("webhook-id", ""), headers.get("webhook-timestamp", "")
    if not webhook_id or not stamp.isdigit() or abs(now - int(stamp)) > \
            SIGNED_TIMESTAMP_TOLERANCE_S:
        return False
    key = secret.encode()
    if secret.startswith("whsec_"):
        try:
            key = base64.b64decode(secret[6:], validate=True)
        except binascii.Error:
            return False
    signed = webhook_id.encode() + b"." + stamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    matches = [_same(part[3:], expected) for part in headers["webhook-signature"].split()
               if part.startswith("v1,")]
    return any(matches)


def delivery_id(provider: str, headers: dict[str, str]) -> str | None:
    names = {"github": ("x-github-delivery",),
             "gitea": ("x-gitea-delivery", "x-forgejo-delivery"),
             "gitlab": ("x-gitlab-event-uuid", "webhook-id", "idempotency-key")}[provider]
    for name in names:
        if headers.get(name):
            return headers[name][:200]
    return None


def event_name(provider: str, headers: dict[str, str]) -> str:
    """`push`, `ping`, or what else the provider says (ignored)."""
    if provider == "github":
        return headers.get("x-github-event", "")
    if provider == "gitea":
        return headers.get("x-gitea-event") or headers.get("x-forgejo-event") or ""
    event = headers.get("x-gitlab-event", "")
    return "push" if event in ("Push Hook", "Tag Push Hook") else event


def read_push(provider: str, payload: dict) -> Push | None:
    """The push a payload describes, or None when it is not a branch or tag push."""
    ref, after = payload.get("ref"), payload.get("after")
    if not isinstance(ref, str) or not isinstance(after, str):
        return None
    if ref.startswith("refs/heads/"):
        kind, name = "branch", ref[len("refs/heads/"):]
    elif ref.startswith("refs/tags/"):
        kind, name = "tag", ref[len("refs/tags/"):]
    else:
        return None
    return Push(kind, name, after, _pusher(provider, payload), after == ZERO_SHA)


def _pusher(provider: str, payload: dict) -> str:
    def pick(*path: str) -> str | None:
        value: object = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        return value if isinstance(value, str) and value else None

    if provider == "github":
        found = pick("pusher", "name") or pick("sender", "login")
    elif provider == "gitea":
        found = pick("pusher", "login") or pick("pusher", "username") or pick("sender", "login")
    else:
        found = pick("user_username") or pick("user_name")
    return found or "unknown"
