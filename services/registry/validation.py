"""Small validators shared by the registries; each raises Invalid with a clear message.

Every name or identifier check goes through `matches`, which matches the WHOLE string
(`re.fullmatch`): `re.match(r"^x$")` also accepts "x\n", whose newline then splits a
remote command or a `Location` header. Patterns here carry no `^`/`$` anchors, so they
only make sense through `matches`. Free text goes through `text`, the one function that
refuses control characters.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any

from services.errors import Invalid

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
SAFE_PATH = re.compile(r"/[A-Za-z0-9._/@+-]*")
# C0 controls but tab and newline, DEL, C1 controls, bidi embeddings, overrides and
# isolates (which make a hook script read differently from what runs), and lone
# surrogates (which cannot be encoded as UTF-8: the database and the answer would fail).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_LINE_BREAK = re.compile(r"[\r\n\u2028\u2029]")


def matches(pattern: re.Pattern[str] | str, value: Any) -> bool:
    """True when `value` is a string and the whole of it matches `pattern`."""
    return isinstance(value, str) and re.fullmatch(pattern, value) is not None


SYSTEM_DIRS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
    "/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
    "/usr", "/usr/bin", "/usr/lib", "/usr/local", "/usr/sbin", "/usr/share", "/var",
    "/var/lib", "/var/log", "/var/www",
})
SYSTEM_TREES = ("/bin/", "/boot/", "/dev/", "/etc/", "/lib/", "/lib32/", "/lib64/", "/proc/",
                "/sbin/", "/sys/", "/usr/bin/", "/usr/lib/", "/usr/sbin/", "/run/")


def name(value: Any, what: str = "name") -> str:
    if not matches(NAME, value):
        raise Invalid(f"{what} must be 1-64 letters, digits, '_', '.', '-' "
                      f"(starting with a letter or digit)")
    return value


def text(value: Any, what: str, max_bytes: int, *, empty: bool = True,
         line: bool = False) -> str:
    """Free text: a string without control characters (tab and newline allowed, newline
    only when `line` is False), at most `max_bytes` of UTF-8."""
    if not isinstance(value, str):
        raise Invalid(f"{what} must be a string")
    if _CONTROL.search(value) or (line and _LINE_BREAK.search(value)):
        raise Invalid(f"{what} must not contain control characters"
                      + (" or line breaks" if line else ""))
    if len(value.encode()) > max_bytes:
        raise Invalid(f"{what} is longer than {max_bytes} bytes")
    if not empty and not value.strip():
        raise Invalid(f"{what} must not be empty")
    return value


def boolean(value: Any, what: str) -> bool:
    """Exactly a JSON true or false: "yes", 1 or [] are mistakes, not truths."""
    if not isinstance(value, bool):
        raise Invalid(f"{what} must be true or false")
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
    if not matches(SAFE_PATH, path) or len(path) > 255:
        raise Invalid("deploy_path may use only letters, digits and . _ / @ + - (255 at most)")
    if path in SYSTEM_DIRS or (path + "/").startswith(SYSTEM_TREES):
        raise Invalid(f"deploy_path {path} is a system directory")
    return path


# Host variables reach hook scripts as environment variables (docs/operations.md): an
# allowlist of plain names, minus every name a shell, the dynamic loader or Ferry reads
# (compared without case). Hooks also run in a clean environment (`env -i`).
VARIABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")
DENIED_VARIABLES = frozenset({
    "PATH", "HOME", "SHELL", "USER", "LOGNAME", "PWD", "OLDPWD", "SHLVL", "IFS", "ENV",
    "CDPATH", "GLOBIGNORE", "EXECIGNORE", "FIGNORE", "PS1", "PS2", "PS3", "PS4",
    "PROMPT_COMMAND", "PROMPT_DIRTRIM", "POSIXLY_CORRECT", "TMOUT", "TMPDIR", "INPUTRC",
    "MAIL", "MAILPATH", "MAILCHECK", "OPTIND", "OPTARG", "OPTERR", "FCEDIT", "HOSTFILE",
    "TERM", "TERMINFO", "TERMCAP", "GCONV_PATH", "GLIBC_TUNABLES", "LOCPATH", "NLSPATH",
    "HOSTALIASES", "RES_OPTIONS", "LOCALDOMAIN", "TZDIR", "AUTO_LOGOUT",
})
DENIED_VARIABLE_PREFIXES = ("BASH", "SHELL", "HIST", "LD_", "DYLD_", "FERRY_", "MALLOC_",
                            "COMP_", "READLINE", "SSH_", "SUDO_")


def allowed_variable_name(key: Any) -> bool:
    """Whether a host variable may be called `key` (also checked again before each hook)."""
    if not matches(VARIABLE_NAME, key):
        return False
    upper = key.upper()
    return upper not in DENIED_VARIABLES and not upper.startswith(DENIED_VARIABLE_PREFIXES)


def variables(value: Any, max_items: int = 64, max_bytes: int = 4096) -> dict[str, str]:
    """Host variables become environment variables of hooks: names must be safe."""
    if not isinstance(value, dict) or len(value) > max_items:
        raise Invalid(f"variables must be an object with at most {max_items} entries")
    result = {}
    for key, item in value.items():
        if not allowed_variable_name(key):
            shown = repr(key) if len(repr(key)) <= 70 else repr(key)[:64] + "…"
            raise Invalid(f"variable name {shown} is not allowed: a letter, then up to 63 "
                          "letters, digits or '_'; not a name the shell, the loader or Ferry "
                          "reads (PATH, HOME, IFS, SHELLOPTS, BASH*, LD_*, FERRY_*, …)")
        result[key] = text(item if not isinstance(item, (int, float)) else str(item),
                           f"variable {key}", max_bytes)
    return result
