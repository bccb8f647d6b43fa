"""Validation of what users give Ferry for git: repository URLs and refs, and redaction
of credentials. Pure functions, no git process; used by the registry and the git service."""

from __future__ import annotations

import re
from urllib.parse import unquote, urlsplit

SHA_PREFIX = re.compile(r"[0-9a-fA-F]{4,40}")
_REF_MAX = 255
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\]")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+~-]*")
_SCP_LIKE = re.compile(r"(?:([^@/:]+)@)?(\[[^\]/]+\]|[^@/:\[\]]+):(.+)")
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"]*@")
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def validate_repo_url(url: str, *, allow_file: bool) -> str:
    """https://, ssh:// and scp-like user@host:path; file:// and absolute paths only when
    allowed. Raise ValueError with a clear message otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError("repository URL is empty")
    if url.startswith("-"):
        raise ValueError("repository URL must not start with '-'")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise ValueError("repository URL must not contain spaces or control characters")
    if "::" in re.sub(r"\[[0-9A-Fa-f:.]*\]", "", url):
        raise ValueError("transport-helper URLs (such as ext::) are not allowed")
    scheme = SCHEME.match(url)
    if scheme:
        name = scheme[1].lower()
        if name in ("https", "ssh"):
            _check_network_url(url, ssh=name == "ssh")
        elif name == "file":
            if not allow_file:
                raise ValueError("file:// repository URLs are not allowed on this server")
            if not url[len("file://"):].startswith("/"):
                raise ValueError("file:// URLs must name an absolute local path (file:///…)")
        elif name == "http":
            raise ValueError("plain http:// is not allowed (no transport security); use https://")
        else:
            raise ValueError(f"URL scheme {name}:// is not allowed; use https://, ssh:// "
                             "or user@host:path")
        return url
    if url.startswith("/"):
        if not allow_file:
            raise ValueError("local repository paths are not allowed on this server")
        return url
    scp = _SCP_LIKE.fullmatch(url)
    if not scp:
        raise ValueError("not a repository URL: use https://host/path, ssh://user@host/path "
                         "or user@host:path")
    user, host, path = scp.groups()
    if user is not None and not _SSH_USER.fullmatch(user):
        raise ValueError("the user name in the repository URL is not valid")
    if not _HOST.fullmatch(host):
        raise ValueError("the host name in the repository URL is not valid")
    if path.startswith("-"):
        raise ValueError("the repository path must not start with '-'")
    return url


def _check_network_url(url: str, *, ssh: bool) -> None:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if not host or not _HOST.fullmatch(host):
        raise ValueError("the host name in the repository URL is missing or not valid")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port when it is read
    except ValueError:
        raise ValueError("the port in the repository URL is not valid") from None
    if ssh and parts.username is not None and not _SSH_USER.fullmatch(unquote(parts.username)):
        raise ValueError("the user name in the repository URL is not valid")
    if ssh and parts.path in ("", "/"):
        raise ValueError("the ssh:// URL names no repository path")


def validate_ref(ref: str) -> str:
    """A branch, tag or SHA as `git check-ref-format --allow-onelevel` accepts it, minus a
    leading '-', at most 255 characters. Raise ValueError otherwise."""
    if not isinstance(ref, str) or not ref:
        raise ValueError("the ref is empty")
    if len(ref) > _REF_MAX:
        raise ValueError(f"the ref is longer than {_REF_MAX} characters")
    if SHA_PREFIX.fullmatch(ref):
        return ref
    problem = None
    if ref.startswith("-"):
        problem = "must not start with '-'"
    elif _REF_FORBIDDEN.search(ref):
        problem = "must not contain spaces, control characters or any of ~ ^ : ? * [ \\"
    elif ".." in ref or "@{" in ref or ref == "@":
        problem = "must not contain '..' or '@{', nor be '@'"
    elif ref.startswith("/") or ref.endswith(("/", ".")) or "//" in ref:
        problem = "must not start or end with '/', end with '.', or contain '//'"
    elif any(part.startswith(".") or part.endswith(".lock") for part in ref.split("/")):
        problem = "no part may start with '.' or end with '.lock'"
    if problem:
        raise ValueError(f"invalid ref {ref!r}: a ref {problem}")
    return ref


def redact_url(url: str) -> str:
    """The URL (or any text holding URLs) with user:password@ credentials replaced by ***."""
    return _CREDENTIALS.sub(r"\1***@", url)
