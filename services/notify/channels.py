"""What each kind of channel is sent: the request a release notification becomes, with each
provider's signing. Pure functions (the clock is passed in), so tests check the signatures
with each provider's documented algorithm.

- webhook: Ferry's JSON, `X-Ferry-Signature-256: sha256=<hex HMAC-SHA256 of the body>`
  (the channel's secret), `X-Ferry-Event`, `X-Ferry-Delivery`.
- slack: an incoming webhook, `{"text"}`.
- dingtalk: a custom robot, `{"msgtype": "text", "text": {"content"}}`; with a secret
  ("加签"), `&timestamp=<ms>&sign=<urlencoded base64 HMAC-SHA256(key=secret,
  msg="<ms>\\n<secret>")>` on the URL.
- wecom: a group robot, `{"msgtype": "text", "text": {"content"}}` (no signing).
- feishu: a custom bot (Feishu/Lark), `{"msg_type": "text", "content": {"text"}}`; with a
  secret, `timestamp` (seconds) and `sign` = base64 HMAC-SHA256(key="<s>\\n<secret>",
  msg="") in the body — not DingTalk's scheme.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass

KINDS = ("webhook", "slack", "dingtalk", "wecom", "feishu")
# The providers' documented limits: DingTalk and WeCom robots take 20 messages a minute.
DEFAULT_RATE_PER_MIN = {"webhook": 60, "slack": 60, "dingtalk": 20, "wecom": 20, "feishu": 60}
EVENTS = ("release.started", "release.awaiting_approval", "release.paused",
          "release.succeeded", "release.failed", "release.cancelled", "release.rolled_back",
          "test")


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def message_text(notification: dict) -> str:
    """One line a person reads in a chat app."""
    if notification["event"] == "test":
        return f"[Ferry] test message for project {notification['project']}"
    release = notification["release"]
    counts = release.get("counts") or {}
    done = ", ".join(f"{counts[key]} {key}" for key in ("ok", "failed") if counts.get(key))
    state = notification["event"].removeprefix("release.").replace("_", " ")
    text = (f"[Ferry] {release['project']} release #{release['id']} {state}: "
            f"{release.get('ref')} by {release.get('created_by') or 'unknown'}")
    if done:
        text += f" ({done} of {release.get('total', '?')} hosts)"
    if release.get("duration_ms"):
        text += f" in {release['duration_ms'] / 1000:.0f}s"
    if notification.get("link"):
        text += f" {notification['link']}"
    return text


def build(kind: str, url: str, secret: str | None, notification: dict, *, now_s: float,
          delivery: str) -> Request:
    """The HTTP request for one notification on one channel."""
    text = message_text(notification)
    json_headers = {"Content-Type": "application/json"}
    if kind == "webhook":
        body = json.dumps(notification, separators=(",", ":"), default=str).encode()
        headers = {**json_headers, "X-Ferry-Event": notification["event"],
                   "X-Ferry-Delivery": delivery}
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Ferry-Signature-256"] = f"sha256={digest}"
        return Request(url, body, headers)
    if kind == "slack":
        return Request(url, _json({"text": text}), json_headers)
    if kind == "wecom":
        return Request(url, _json({"msgtype": "text", "text": {"content": text}}),
                       json_headers)
    if kind == "dingtalk":
        if secret:
            url = _with_query(url, dingtalk_signature(secret, int(now_s * 1000)))
        return Request(url, _json({"msgtype": "text", "text": {"content": text}}),
                       json_headers)
    if kind == "feishu":
        payload: dict = {"msg_type": "text", "content": {"text": text}}
        if secret:
            stamp = int(now_s)
            payload = {"timestamp": str(stamp), "sign": feishu_sign(secret, stamp), **payload}
        return Request(url, _json(payload), json_headers)
    raise ValueError(f"unknown channel kind {kind!r}")


def dingtalk_signature(secret: str, timestamp_ms: int) -> dict[str, str]:
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), to_sign, hashlib.sha256).digest()
    return {"timestamp": str(timestamp_ms), "sign": base64.b64encode(digest).decode()}


def feishu_sign(secret: str, timestamp_s: int) -> str:
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


def _json(value: dict) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


def _with_query(url: str, params: dict[str, str]) -> str:
    joiner = "&" if urllib.parse.urlsplit(url).query else "?"
    return url + joiner + urllib.parse.urlencode(params)
