"""Secrets masked out of registry documents, and field-level changes between two versions
of one, for the audit log (which must never hold a secret).

`mask_secrets` is the one masking function: credentials in URLs (through
services.git.refs.redact_url, the one URL redaction), secret-looking query parameters,
`NAME=value` assignments whose name says secret (in hook scripts, say), and any value
whose key says secret (host variables such as DB_PASSWORD, future env settings).
"""

from __future__ import annotations

import re
from typing import Any

from services.git.refs import redact_url

MASK = "***"
# A key or variable name that says its value is a secret.
SECRET_NAME = re.compile(r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|"
                         r"credential|auth(?!or)|cookie|signature", re.I)
# ?token=…, &api_key=… in a URL
_SECRET_QUERY = re.compile(r"([?&][^=&#\s]*(?:pass|secret|token|key|sig|auth)[^=&#\s]*=)"
                           r"[^&#\s'\"]+", re.I)
# API_TOKEN=…, export DB_PASSWORD="…", password: … in scripts and free text
_SECRET_ASSIGNMENT = re.compile(
    r"(\b[A-Za-z_][A-Za-z0-9_]*(?:pass(?:word|wd|phrase)?|secret|token|api_?key|"
    r"private_?key|credentials?)[A-Za-z0-9_]*\s*[=:]\s*)(\"[^\"\n]*\"|'[^'\n]*'|[^\s;&|]+)",
    re.I)
_MISSING = object()


def mask_text(text: str) -> str:
    """`text` with credentials in URLs, secret query values and secret assignments
    replaced by ***."""
    text = redact_url(text)
    text = _SECRET_QUERY.sub(rf"\1{MASK}", text)
    return _SECRET_ASSIGNMENT.sub(rf"\1{MASK}", text)


def mask_secrets(value: Any, key: str = "") -> Any:
    """A copy of `value` (any JSON-like tree) with every secret replaced by ***."""
    if key and SECRET_NAME.search(key) and value not in (None, "", [], {}) and not (
            isinstance(value, (dict, list))):
        return MASK
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {name: mask_secrets(item, str(name)) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_secrets(item, key) for item in value]
    return value


def _flatten(value: Any, prefix: str, into: dict[str, Any]) -> dict[str, Any]:
    """{"hooks": {"after_release": "x"}} → {"hooks.after_release": "x"} (lists stay whole)."""
    if isinstance(value, dict) and value:
        for name, item in value.items():
            _flatten(item, f"{prefix}.{name}" if prefix else str(name), into)
    elif prefix:
        into[prefix] = value
    return into


def field_changes(before: dict | None, after: dict | None,
                  ignore: tuple[str, ...] = ("_id", "created_at", "updated_at")) -> dict[str, dict]:
    """What changed from `before` to `after`, field by field (nested fields as dotted
    paths), masked: {"hooks.after_release": {"before": "...", "after": "..."}}. A field
    that did not exist on one side has no "before" (created) or no "after" (removed)."""
    raw_old = _flatten(_without(before, ignore), "", {})
    raw_new = _flatten(_without(after, ignore), "", {})
    old = _flatten(mask_secrets(_without(before, ignore)), "", {})
    new = _flatten(mask_secrets(_without(after, ignore)), "", {})
    changes: dict[str, dict] = {}
    for path in sorted(set(raw_old) | set(raw_new)):
        was, now = raw_old.get(path, _MISSING), raw_new.get(path, _MISSING)
        if was == now or (was in (_MISSING, None) and now in (_MISSING, None)):
            continue
        change = {}      # compared unmasked (a changed secret shows as *** → ***)
        if was is not _MISSING:
            change["before"] = old[path]
        if now is not _MISSING:
            change["after"] = new[path]
        changes[path] = change
    return changes


def _without(doc: dict | None, ignore: tuple[str, ...]) -> dict:
    return {key: value for key, value in (doc or {}).items() if key not in ignore}
