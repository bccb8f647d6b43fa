"""Running git: one hardened environment and set of `-c` options for every git process,
a time limit after which git is killed with its children, and error messages that never
hold credentials."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import git as gitpython

from services.errors import FerryError
from services.git.refs import SCHEME, redact_url, remote_of
from services.settings import Settings


class GitError(FerryError):
    """A git operation failed; the message is for people and never holds credentials."""


# One message for every way of failing to reach a remote (refused, reset, TLS, DNS, stalled,
# timed out): telling them apart would let a URL map ports on networks Ferry can reach.
UNREACHABLE = "could not reach the repository (connection refused, failed or timed out)"
_UNREACHABLE = re.compile(
    r"failed to connect|couldn't connect|could not connect|connection (refused|reset|timed"
    r" out|closed)|timed out|could not resolve|name or service not known|no route to host|"
    r"network is unreachable|ssl|tls|gnutls|certificate|handshake|empty reply|recv failure|"
    r"send failure|unexpected disconnect|early eof|banner exchange|kex_exchange_identification|"
    r"closed by remote|broken pipe|proxy|port \d+", re.IGNORECASE)


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


def _unreachable(err: str | None) -> bool:
    """True when git's stderr says the remote could not be reached (URLs and quoted names,
    which a repository path could fill with such words, are left out)."""
    text = re.sub(r"'[^'\n]*'|\S+://\S+", "", err or "")
    return bool(_UNREACHABLE.search(text))


class GitRunner:
    """Runs one git command through GitPython with Ferry's environment and options."""

    def __init__(self, settings: Settings) -> None:
        self.timeout = settings.git_timeout_s
        self.error_max = settings.git_error_max_chars
        allow_file = settings.git_allow_file_urls
        self.ssh_command = ssh = " ".join([
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

    def command(self, args: list[str], git_dir: pathlib.Path | None = None,
                options: list[str] | None = None) -> list[str]:
        command = [gitpython.Git.GIT_PYTHON_GIT_EXECUTABLE or "git", *self.options,
                   *(options or [])]
        if git_dir is not None:
            command.append(f"--git-dir={git_dir}")
        return command + args

    def __call__(self, args: list[str], *, cwd: pathlib.Path, git_dir: pathlib.Path | None = None,
                 url: str | None = None, check: bool = True, output_stream=None,
                 options: list[str] | None = None,
                 env: dict[str, str] | None = None) -> tuple[int, str]:
        """(status, stdout); raise GitError when `check` and git failed or timed out.
        `options` and `env` are extra `-c` pairs and variables Ferry computed (never user
        text), e.g. the address pin of services.git.network."""
        ensure_off_loop()
        command = self.command(args, git_dir, options)
        network = url is not None and remote_of(url) is not None
        started = time.monotonic()
        status, out, err = gitpython.Git(str(cwd)).execute(
            command, env={**self.env, **(env or {})}, kill_after_timeout=self.timeout,
            with_extended_output=True, with_exceptions=False, output_stream=output_stream,
            strip_newline_in_stdout=False)
        elapsed = time.monotonic() - started
        if status != 0 and network and (elapsed >= self.timeout * 0.95 or _unreachable(err)):
            raise GitError(UNREACHABLE)
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

    @contextlib.contextmanager
    def records(self, args: list[str], *, cwd: pathlib.Path, git_dir: pathlib.Path,
                separator: bytes = b"\0") -> Iterator[Iterator[bytes]]:
        """git's stdout as separator-terminated records, read as git writes them, so a
        caller can stop early (a quota) without holding the whole output; git is killed
        when the caller stops, on error and after git_timeout_s."""
        ensure_off_loop()
        errors = tempfile.TemporaryFile()    # noqa: SIM115 - closed below
        process = subprocess.Popen(
            self.command(args, git_dir), cwd=cwd, stdin=subprocess.DEVNULL,
            env={**os.environ, "LANGUAGE": "C", "LC_ALL": "C", **self.env},
            stdout=subprocess.PIPE, stderr=errors, start_new_session=True)
        timer = threading.Timer(self.timeout, process.kill)
        timer.start()
        finished = []

        def read() -> Iterator[bytes]:
            pending = b""
            while chunk := process.stdout.read(65536):
                pending += chunk
                *done, pending = pending.split(separator)
                yield from done
            finished.append(True)
            if pending:
                yield pending

        try:
            yield read()
            if finished:                 # read to the end: git's status counts
                status = process.wait()
                if status != 0:
                    errors.seek(0)
                    err = errors.read(self.error_max * 4).decode("utf-8", "replace")
                    detail = scrub(" / ".join(err.splitlines()[:3]), None)[:self.error_max]
                    raise GitError(f"git {args[0]} failed: {detail or f'exit status {status}'}")
        finally:
            timer.cancel()
            if process.poll() is None:
                process.kill()
            process.wait()
            process.stdout.close()
            errors.close()
