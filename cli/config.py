"""Where the `ferry` command finds its server and token: FERRY_URL / FERRY_TOKEN, else the
credentials `ferry login` stored (a 0600 file under $XDG_CONFIG_HOME/ferry)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8700"


@dataclass(frozen=True)
class Credentials:
    url: str
    token: str | None


def credentials_path() -> Path:
    """FERRY_CONFIG names the file outright (tests, several servers); else XDG's place."""
    if os.environ.get("FERRY_CONFIG"):
        return Path(os.environ["FERRY_CONFIG"])
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "ferry" / "credentials.json"


def load(url: str | None = None) -> Credentials:
    """The server and token to use: an explicit url, then the environment, then the file."""
    stored: dict = {}
    path = credentials_path()
    with contextlib.suppress(OSError, ValueError):
        stored = json.loads(path.read_text())
    chosen = (url or os.environ.get("FERRY_URL") or stored.get("url") or DEFAULT_URL)
    token = os.environ.get("FERRY_TOKEN") or (
        stored.get("token") if stored.get("url", chosen).rstrip("/") == chosen.rstrip("/")
        else None)
    return Credentials(chosen.rstrip("/"), token)


def save(credentials: Credentials) -> Path:
    """Store url and token readable by this user only (written 0600 from the start)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump({"url": credentials.url, "token": credentials.token}, file)
    os.chmod(path, 0o600)
    return path
