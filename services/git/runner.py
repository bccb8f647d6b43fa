"""Running git: one hardened environment and set of `-c` options for every git process,
a time limit after which git is killed with its children, and error messages that never
hold credentials."""

from __future__ import annotations

import asyncio
import math
import pathlib
import time
from urllib.parse import unquote, urlsplit

import git as gitpython

from services.errors import FerryError
from services.git.refs import SCHEME, redact_url
from services.settings import Settings


class GitError(FerryError):
    """A git operation failed; the message is for people and never holds credentials."""


def ensure_off_loop() -> None:
    """Refuse to run blocking git, tar or hashing work on a thread running an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError("blocking git/file work called on the event loop thread; "
                       "use the async API, which runs it in the executor")


def scrub(text: str, url: str | None) -> str:
    """Text from git with every credential of `url` removed, however git printed it."""
    text = redact_url(text)
    scheme = SCHEME.match(url or "")
    if url and scheme:
        user, _, password = urlsplit(url).netloc.rpartition("@")[0].partition(":")
        # An https user name is often a token; an ssh one ("git") is not a secret.
        secrets = {password, user} if scheme[1].lower() == "https" else {password}
        for secret in secrets:
            for form in {secret, unquote(secret)}:
                if len(form) >= 3:
                    text = text.replace(form, "***")
    return text


class GitRunner:
    """Runs one git command through GitPython with Ferry's environment and options."""

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.git_timeout_s
        self.error_max = settings.git_error_max_chars
        allow_file = settings.git_allow_file_urls
        ssh = " ".join([
            "ssh", "-o", "BatchMode=yes",
            "-o", f"ConnectTimeout={max(1, math.ceil(settings.ssh_connect_timeout_s))}",
            "-o", f"ServerAliveInterval={max(1, math.ceil(settings.ssh_keepalive_interval_s))}",
            "-o", f"ServerAliveCountMax={settings.ssh_keepalive_count_max}",
            "-o", "ForwardAgent=no", "-o", "ClearAllForwardings=yes"])
        self.env = {
            "GIT_ALLOW_PROTOCOL": "https:ssh" + (":file" if allow_file else ""),
            "GIT_PROTOCOL_FROM_USER": "0",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ASKPASS": "",
            "SSH_ASKPASS_REQUIRE": "never",
            "GIT_SSH_COMMAND": ssh,
            "GIT_SSH_VARIANT": "ssh",
            "GIT_HTTP_LOW_SPEED_LIMIT": str(settings.git_low_speed_limit_bps),
            "GIT_HTTP_LOW_SPEED_TIME": str(settings.git_low_speed_time_s),
        }
        options = {
            "core.hooksPath": "/dev/null",
            "protocol.file.allow": "always" if allow_file else "never",
            "submodule.recurse": "false",
            "fetch.recurseSubmodules": "false",
            "core.fsmonitor": "false",
            "core.askPass": "",
            "log.showSignature": "false",
        }
        self.options = [arg for key, value in options.items() for arg in ("-c", f"{key}={value}")]

    def __call__(self, args: list[str], *, cwd: pathlib.Path, git_dir: pathlib.Path | None = None,
                 url: str | None = None, check: bool = True, output_stream=None) -> tuple[int, str]:
        """(status, stdout); raise GitError when `check` and git failed or timed out."""
        ensure_off_loop()
        command = [gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *self.options]
        if git_dir is not None:
            command.append(f"--git-dir={git_dir}")
        command += args
        started = time.monotonic()
        status, out, err = gitpython.Git(str(cwd)).execute(
            command, env=self.env, kill_after_timeout=self.timeout, with_extended_output=True,
            with_exceptions=False, output_stream=output_stream, strip_newline_in_stdout=False)
        elapsed = time.monotonic() - started
        if status != 0 and elapsed >= self.timeout * 0.95:
            target = f" from {redact_url(url)}" if url else ""
            raise GitError(f"git {args[0]}{target} timed out after {self.timeout:g}s "
                           "and was stopped")
        if status != 0 and check:
            lines = [line.strip() for line in (err or "").splitlines() if line.strip()]
            lines = [line for line in lines if line.startswith(("fatal:", "error:"))] or lines
            detail = scrub(" / ".join(lines[:3]), url)[:self.error_max] or f"exit status {status}"
            raise GitError(f"git {args[0]} failed: {detail}")
        return status, out if isinstance(out, str) else ""
