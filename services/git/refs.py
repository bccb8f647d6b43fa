"""Validation of what users give Ferry for git: repository URLs and refs, and redaction
of credentials. Pure functions, no git process; used by the registry and the git service."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

SHA_PREFIX = re.compile(r"[0-9a-fA-F]{4,40}")
_REF_MAX = 255
URL_MAX = 2048
_REF_FORBIDDEN = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")
_HOST = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*|\[[0-9A-Fa-f:.]+\]")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+~-]*")
_SCP_LIKE = re.compile(r"(?:([^@/:]+)@)?(\[[^\]/]+\]|[^@/:\[\]]+):(.+)")
# scheme://<anything but '/' or whitespace>@ : a password may hold quotes, ':' and '@'
# (the last '@' before the host ends it); '/', '?', '#' and spaces must be percent-encoded,
# which validate_repo_url enforces, so every URL Ferry accepts is redacted whole.
_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/\s]*@")
SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")


def validate_repo_url(url: str, *, allow_file: bool) -> str:
    """https://, ssh:// and scp-like user@host:path; file:// and absolute paths only when
    allowed. Raise ValueError with a clear message otherwise."""
    if not isinstance(url, str) or not url:
        raise ValueError("repository URL is empty")
    if len(url) > URL_MAX:
        raise ValueError(f"repository URL is longer than {URL_MAX} characters")
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
    if "@" in url[len(parts.scheme) + 3 + len(parts.netloc):]:
        raise ValueError("the repository URL has an '@' after the host: percent-encode "
                         "'/', '?', '#', '@' and spaces in credentials (%2F, %3F, %23, %40, %20)")
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


@dataclass(frozen=True)
class Remote:
    """Where a network repository URL connects: for the address policy and per-remote limits."""

    scheme: str          # "https" or "ssh"
    host: str            # lower case, IPv6 without brackets
    port: int

    @property
    def key(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def remote_of(url: str) -> Remote | None:
    """The host and port a validated repository URL connects to; None for local ones."""
    scheme = SCHEME.match(url)
    if scheme:
        name = scheme[1].lower()
        if name not in ("https", "ssh"):
            return None
        parts = urlsplit(url)
        return Remote(name, (parts.hostname or "").lower(),
                      parts.port or (443 if name == "https" else 22))
    if url.startswith("/"):
        return None
    scp = _SCP_LIKE.fullmatch(url)
    if not scp:
        return None
    return Remote("ssh", scp[2].strip("[]").lower(), 22)


def submodule_url(base: str, url: str | None, path: str) -> str:
    """A submodule URL from .gitmodules, relative ones (./, ../) resolved against base."""
    if not url:
        raise ValueError("it has no URL in .gitmodules")
    if not url.startswith(("./", "../")):
        return url
    scheme = SCHEME.match(base)
    if scheme:
        floor = base.find("/", scheme.end())
    elif base.startswith("/"):
        floor = 0
    else:
        floor = base.find(":") + 1
    base, rel = base.rstrip("/"), url
    while rel.startswith(("./", "../")):
        if rel.startswith("./"):
            rel = rel[2:]
            continue
        rel = rel[3:]
        cut = base.rfind("/")
        if floor < 0 or cut < floor:
            raise ValueError(f"its relative URL {url!r} leaves the repository host")
        base = base[:cut]
    return f"{base}/{rel}" if not base.endswith(":") else f"{base}{rel}"
