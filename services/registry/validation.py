"""Small validators shared by the registries; each raises Invalid with a clear message."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from services.errors import Invalid

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
SAFE_PATH = re.compile(r"^/[A-Za-z0-9._/@+-]*$")
SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
    "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var",
    "/var/lib", "/var/log", "/var/www",
})
SYSTEM_TREES = ("/bin/", "/boot/", "/dev/", "/etc/", "/lib/", "/lib32/", "/lib64/", "/proc/",
                "/sbin/", "/sys/", "/usr/bin/", "/usr/lib/", "/usr/sbin/", "/run/")


def name(value: Any, what: str = "name") -> str:
    if not isinstance(value, str) or not NAME.match(value):
        raise Invalid(f"{what} must be 1-64 letters, digits, '_', '.', '-' "
                      f"(starting with a letter or digit)")
    return value


def text(value: Any, what: str, max_bytes: int, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    if "\x00" in value:
        raise Invalid(f"{what} must not contain NUL bytes")
    if len(value.encode()) > max_bytes:
        raise Invalid(f"{what} is longer than {max_bytes} bytes")
    if not empty and not value.strip():
        raise Invalid(f"{what} must not be empty")
    return value


def integer(value: Any, what: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{what} must be a whole number from {low} to {high}")
    return value


def name_list(value: Any, what: str, max_items: int = 64) -> list[str]:
    if not isinstance(value, list) or len(value) > max_items:
        raise Invalid(f"{what} must be a list of at most {max_items} names")
    return [name(item, f"each of {what}") for item in value]


def deploy_path(value: Any) -> str:
    """Absolute, normalised, and never / or a system directory."""
    if not isinstance(value, str) or not value.startswith("/"):
        raise Invalid("deploy_path must be an absolute path")
    path = posixpath.normpath(value)
    if path.startswith("//"):
        path = "/" + path.lstrip("/")
    if not SAFE_PATH.match(path) or len(path) > 255:
        raise Invalid("deploy_path may use only letters, digits and . _ / @ + - (255 at most)")
    if path in SYSTEM_DIRS or (path + "/").startswith(SYSTEM_TREES):
        raise Invalid(f"deploy_path {path} is a system directory")
    return path


def variables(value: Any, max_items: int = 64, max_bytes: int = 4096) -> dict[str, str]:
    """Host variables become environment variables of hooks: names must be safe."""
    if not isinstance(value, dict) or len(value) > max_items:
        raise Invalid(f"variables must be an object with at most {max_items} entries")
    result = {}
    for key, item in value.items():
        if not ENV_NAME.match(key) or key.upper().startswith(("FERRY_", "LD_")) or key in (
                "PATH", "HOME", "SHELL", "USER", "IFS", "BASH_ENV", "ENV"):
            raise Invalid(f"variable name {key!r} is not allowed (letters, digits, '_'; "
                          "not FERRY_*, LD_*, PATH, HOME, …)")
        result[key] = text(item if not isinstance(item, (int, float)) else str(item),
                           f"variable {key}", max_bytes)
    return result
