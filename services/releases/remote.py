"""The shell commands each host stage runs. Every interpolated value goes through
shlex.quote; hook scripts get Ferry's values as environment variables, never as text."""

from __future__ import annotations

import shlex
from collections.abc import Mapping

q = shlex.quote
ARTIFACTS = ".ferry/artifacts"
MISSING_RELEASE = 44


def release_dir(deploy_path: str, release_id: int) -> str:
    return f"{deploy_path}/releases/{int(release_id)}"


def artifact_path(deploy_path: str, sha256: str) -> str:
    return f"{deploy_path}/{ARTIFACTS}/{sha256}.tar.gz"


def check_artifact(deploy_path: str, sha256: str) -> str:
    """Prints `present` when the host already has this artifact (verified when written)."""
    path = artifact_path(deploy_path, sha256)
    return (f"mkdir -p {q(deploy_path)}/releases {q(deploy_path)}/{ARTIFACTS} && "
            f"if [ -f {q(path)} ]; then echo present; else echo absent; fi")


def receive_artifact(deploy_path: str, sha256: str) -> str:
    """Reads the artifact from stdin, checks its sha256 on the host, then keeps it."""
    path = artifact_path(deploy_path, sha256)
    part = path + ".part"
    return (f"cat > {q(part)} && "
            f"actual=$(sha256sum < {q(part)} | cut -d' ' -f1) && "
            f"if [ \"$actual\" = {q(sha256)} ]; then mv -f {q(part)} {q(path)}; "
            f"else rm -f {q(part)}; echo \"sha256 mismatch: got $actual\" >&2; exit 3; fi")


def extract(deploy_path: str, release_id: int, sha256: str, metadata: str) -> str:
    """Unpacks into releases/<id>.tmp, then renames into place (never touches current)."""
    final = release_dir(deploy_path, release_id)
    tmp = final + ".tmp"
    return (f"rm -rf {q(tmp)} && mkdir -p {q(tmp)} && "
            f"tar -xzf {q(artifact_path(deploy_path, sha256))} -C {q(tmp)} && "
            f"printf '%s\\n' {q(metadata)} > {q(tmp)}/.ferry-release && "
            f"if [ \"$(readlink {q(deploy_path)}/current)\" != releases/{int(release_id)} ]; "
            f"then rm -rf {q(final)}; fi && mv -T {q(tmp)} {q(final)} && "
            f"echo \"extracted $(find {q(final)} -type f | wc -l) files\"")


def switch(deploy_path: str, release_id: int) -> str:
    """The atomic switch; prints the release `current` pointed to before.
    Exits with MISSING_RELEASE when the target release is not kept on the host."""
    target = f"releases/{int(release_id)}"
    return (f"cd {q(deploy_path)} && "
            f"if [ ! -d {q(target)} ]; then exit {MISSING_RELEASE}; fi && "
            f"previous=$(readlink current || true) && "
            f"ln -sfn {q(target)} current.tmp && mv -T current.tmp current && "
            f"echo \"previous=$previous\"")


def hook(script: str, cwd: str, env: Mapping[str, str]) -> str:
    """Runs a hook script with `bash -e` in `cwd`, its values passed as environment."""
    assignments = " ".join(f"{name}={q(value)}" for name, value in env.items())
    return f"cd {q(cwd)} && env {assignments} bash -e -c {q(script)}"


def health_url(url: str, timeout_s: float) -> str:
    seconds = max(1, int(timeout_s))
    return (f"curl -fsS -o /dev/null -w 'HTTP %{{http_code}}\\n' --max-time {seconds} {q(url)}"
            f" || wget -q -O /dev/null -T {seconds} {q(url)}")


def prune(deploy_path: str, keep: int) -> str:
    """Deletes all but the newest `keep` releases, never the one `current` points to."""
    keep = max(1, int(keep))
    return (f"cd {q(deploy_path)}/releases && "
            f"current=$(basename \"$(readlink ../current)\") && "
            f"for r in $(ls -1 | grep -E '^[0-9]+$' | sort -n | head -n -{keep}); do "
            f"if [ \"$r\" != \"$current\" ]; then rm -rf -- \"$r\" && echo \"pruned $r\"; fi; "
            f"done; rm -rf -- *.tmp; "
            f"cd ../{ARTIFACTS} && ls -1t | grep -E '^[0-9a-f]{{64}}\\.tar\\.gz$' | "
            f"tail -n +{keep + 1} | while read a; do rm -f -- \"$a\"; done; true")
