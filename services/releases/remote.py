"""The shell commands each host stage runs. Every interpolated value goes through
shlex.quote; hook scripts get Ferry's values as environment variables, never as text.

The commands are POSIX sh (the SSH user's login shell runs them) and need GNU tar,
coreutils and util-linux's `setsid` on the host. Each one checks the deploy path itself
with shell builtins (`cd -P`, no extra process, no extra SSH exec request): a deploy path
that resolves anywhere else on the host (a symlink on the path) is refused with exit
status DEPLOY_PATH_REFUSED and a `ferry: ` line giving the reason.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

q = shlex.quote
ARTIFACTS = ".ferry/artifacts"
MARKER = ".ferry-release"
MISSING_RELEASE = 44
DEPLOY_PATH_REFUSED = 45
UNSAFE_ARTIFACT = 46
# Exit statuses whose reason is the command's last line starting with REASON_PREFIX.
REFUSALS = (DEPLOY_PATH_REFUSED, UNSAFE_ARTIFACT)
REASON_PREFIX = "ferry: "
# GNU tar: never chown to the archive's owners or keep its set-id bits, even as root; no
# warning for files dated in the future (the Ferry server's clock may run ahead). Absolute
# names, `..` and members through an extracted symlink are refused by GNU tar itself
# (the first with a warning, which extract() treats as a refusal too).
TAR_OPTIONS = "--no-same-owner --no-same-permissions --no-overwrite-dir --warning=no-timestamp"
TAR_MESSAGES_MAX = 2000  # bytes of tar's complaints kept for the host's log


def release_dir(deploy_path: str, release_id: int) -> str:
    return f"{deploy_path}/releases/{int(release_id)}"


def artifact_path(deploy_path: str, sha256: str) -> str:
    return f"{deploy_path}/{ARTIFACTS}/{sha256}.tar.gz"


def _refuse(message: str, status: int = DEPLOY_PATH_REFUSED) -> str:
    """`{ echo "ferry: message" >&2; exit status; }`; `message` is Ferry's own text and
    may use "$d" (the deploy path), "$a" and "$PWD"."""
    return f'{{ echo "{REASON_PREFIX}{message}" >&2; exit {status}; }}'


def enter_deploy_path(deploy_path: str) -> str:
    """cd into the existing deploy path (also left in "$d"), refusing one that resolves
    elsewhere."""
    return (f"{{ d={q(deploy_path)}; "
            f"{{ cd -P -- \"$d\" 2>/dev/null || "
            f"{_refuse('deploy path $d does not exist or cannot be entered')}; }} && "
            f"{{ [ \"$PWD\" = \"$d\" ] || "
            f"{_refuse('deploy path $d resolves to $PWD; refusing')}; }}; }}")


def prepare_deploy_path(deploy_path: str, fresh: str | None = None) -> str:
    """Create the deploy path if needed, never through a symlink: its deepest existing
    part must resolve to itself. Ends inside the deploy path. `fresh` (a directory
    relative to the deploy path, e.g. releases/<id>.tmp) is created empty, in the same
    `mkdir`, after removing whatever was left there."""
    stale = (f"if [ \"$a\" = \"$d\" ] && {{ [ -e {fresh} ] || [ -L {fresh} ]; }}; then "
             f"rm -rf -- {fresh} || exit; fi; ") if fresh else ""
    made = f"\"$d/{fresh}\"" if fresh else "\"$d/releases\""
    return (f"d={q(deploy_path)}; a=$d; "
            "while [ ! -e \"$a\" ] && [ ! -L \"$a\" ]; do a=${a%/*}; a=${a:-/}; done; "
            "if cd -P -- \"$a\" 2>/dev/null; then [ \"$PWD\" = \"$a\" ] || "
            + _refuse('deploy path $d resolves to $(readlink -m -- "$d"); refusing')
            + "; else " + _refuse('deploy path $d: $a is not a directory that can be entered')
            + f"; fi; {stale}mkdir -p -- {made} \"$d/{ARTIFACTS}\" && "
            f"{enter_deploy_path(deploy_path)}")


def check_artifact(deploy_path: str, sha256: str) -> str:
    """Prints `present` when the host already has this artifact, else `absent`; prepares
    the deploy path. (A deploy uses receive_and_extract, which does this and more.)"""
    path = artifact_path(deploy_path, sha256)
    return (f"{prepare_deploy_path(deploy_path)} && "
            f"if [ -f {q(path)} ]; then echo present; else echo absent; fi")


def marker(tag: str, word: str) -> str:
    """The line announcing a stage (or a fact) inside a command that runs several:
    `tag` is the pipeline's own token, so a hook printing such a line by chance is not
    taken for one."""
    return f"echo {q(f'{tag} {word}')}"


def receive_and_extract(deploy_path: str, release_id: int, sha256: str, metadata: str,
                        tag: str) -> str:
    """One command for upload and extract. It prepares the deploy path, then prints
    `<tag> present` (the host has the artifact: Ferry closes stdin) or `<tag> send`
    (Ferry streams the file). The artifact is kept only if its sha256 matches, then
    unpacked into releases/<id>.tmp and renamed into place (never touching current)
    after `<tag> extract`. (`cat` then `sha256sum` of the file, in the page cache, costs
    the host less CPU than hashing while receiving through `tee`, which copies in 8 KiB.)

    Nothing from the artifact can make Ferry write outside the release: GNU tar refuses
    absolute names, `..` and members below an extracted symlink, and any complaint of
    tar fails the host (UNSAFE_ARTIFACT); device files, FIFOs and sockets are refused;
    Ferry's marker replaces whatever the artifact had at its name (a symlink is removed,
    never followed) and is created with noclobber."""
    rid = int(release_id)
    tmp, final = f"releases/{rid}.tmp", f"releases/{rid}"
    artifact = f"{ARTIFACTS}/{sha256}.tar.gz"
    unsafe = "the artifact was refused: {}; nothing was extracted"
    return "\n".join([
        f"{prepare_deploy_path(deploy_path, fresh=tmp)} || exit",
        f"a={q(artifact)}",
        f"if [ -f \"$a\" ]; then {marker(tag, 'present')}; else",
        f"  {marker(tag, 'send')}",
        "  cat > \"$a.part\" || { s=$?; rm -f -- \"$a.part\"; exit \"$s\"; }",
        "  s=$(sha256sum \"$a.part\"); s=${s%% *}",
        f"  if [ \"$s\" = {q(sha256)} ]; then mv -f -- \"$a.part\" \"$a\" || exit",
        "  else rm -f -- \"$a.part\"; echo \"sha256 mismatch: got $s\" >&2; exit 3; fi",
        "fi",
        marker(tag, "extract"),
        f"tar -xzf \"$a\" -C {tmp} {TAR_OPTIONS} 2>.ferry/tar.err </dev/null; s=$?",
        "if [ \"$s\" != 0 ] || [ -s .ferry/tar.err ]; then "
        f"tail -c {TAR_MESSAGES_MAX} .ferry/tar.err >&2; rm -rf -- {tmp}; "
        f"{_refuse(unsafe.format('tar reported the problems above'), UNSAFE_ARTIFACT)}; fi",
        f"s=$(find {tmp} ! -type d ! -type f ! -type l -print -quit)",
        f"if [ -n \"$s\" ]; then rm -rf -- {tmp}; "
        f"{_refuse(unsafe.format('it holds device files, FIFOs or sockets'), UNSAFE_ARTIFACT)}"
        "; fi",
        f"if [ -e {tmp}/{MARKER} ] || [ -L {tmp}/{MARKER} ]; then "
        f"rm -rf -- {tmp}/{MARKER} || exit; fi",
        f"set -C; printf '%s\\n' {q(metadata)} > {tmp}/{MARKER} || exit; set +C",
        f"if [ -e {final} ] || [ -L {final} ]; then "
        f"[ \"$(readlink current)\" = {final} ] || rm -rf -- {final} || exit; fi",
        f"mv -T -- {tmp} {final} || exit",
        f"echo 'extracted into {final}'",
    ])


def switch(deploy_path: str, release_id: int) -> str:
    """The atomic switch; prints the release `current` pointed to before.
    Exits with MISSING_RELEASE when the target release is not kept on the host."""
    return f"{enter_deploy_path(deploy_path)} || exit\n{_switch(release_id)}"


def _switch(release_id: int) -> str:
    """Run in the deploy path ("$d"). `previous` is the release directory current leads
    to, found with `cd -P` (a builtin: no subshell, no readlink process); when current
    leads anywhere else (not made by Ferry) or nowhere, what `readlink current` prints."""
    target = f"releases/{int(release_id)}"
    return "\n".join([
        f"[ -d {target} ] || exit {MISSING_RELEASE}",
        "previous=",
        "if [ -L current ]; then",
        "  if cd -P current 2>/dev/null; then previous=${PWD#\"$d\"/}; cd \"$d\" || exit; fi",
        "  case $previous in releases/[1-9]*) ;; *) previous=$(readlink current);; esac",
        "fi",
        f"ln -sfn {target} current.tmp && mv -T current.tmp current || exit",
        "echo \"previous=$previous\""])


def switch_verify_prune(deploy_path: str, release_id: int, tag: str, check: str | None,
                        keep: int | None) -> str:
    """The switch, then (`check`, a command run in `current`) the health check, then
    (`keep`) prune once the check passed: one command, each stage announced by a marker
    line; the check's status comes back as `<tag> verify-status <n>`."""
    parts = [switch(deploy_path, release_id)]
    if check is not None:
        parts.append(_verify(check, tag))
    if keep is not None:
        parts += [marker(tag, "prune"), _prune(keep, f"releases/{int(release_id)}")]
    return "\n".join(parts)


def verify_prune(deploy_path: str, tag: str, check: str, keep: int | None) -> str:
    """The health check alone (a retry, or after the after_release hook), then prune."""
    parts = [f"{enter_deploy_path(deploy_path)} || exit", _verify(check, tag)]
    if keep is not None:
        parts += [marker(tag, "prune"), _prune(keep, None)]
    return "\n".join(parts)


def _verify(check: str, tag: str) -> str:
    """Runs `check` in the background and waits. A health check command (health_command)
    makes its background job the leader of a session of its own, so that on a TERM
    (timeout, cancel), and once it has ended, whatever is left of its process group is
    killed, as a hook's wrapper does; a URL check is simply passed the TERM."""
    kill = 'kill -KILL -- "-$c" 2>/dev/null'
    return "\n".join([
        marker(tag, "verify"),
        f"c=; trap '[ -n \"$c\" ] && {{ {kill} || kill -TERM \"$c\" 2>/dev/null; }}; exit 143'"
        " TERM INT HUP",
        f"( {check} ) & c=$!",
        "wait \"$c\"; s=$?",
        "trap - TERM INT HUP",
        kill,
        f"echo \"{tag} verify-status $s\"",
        "[ \"$s\" = 0 ] || exit 0"])


# Runs the hook (its script in "$1") in a session of its own and, once it has ended or
# when this wrapper is signalled (timeout, cancel, lost connection), kills whatever is
# left of that session's process group: a `nohup cmd &` does not outlive its hook.
_HOOK_WRAPPER = "\n".join([
    "p=",
    "trap '[ -n \"$p\" ] && kill -KILL -- \"-$p\" 2>/dev/null; exit 143' TERM INT HUP",
    "setsid bash --noprofile --norc -e -c \"$1\" ferry-hook &",
    "p=$!",
    "wait \"$p\"; s=$?",
    "kill -KILL -- \"-$p\" 2>/dev/null",
    "exit \"$s\"",
])


def hook(script: str, cwd: str, env: Mapping[str, str], path: str) -> str:
    """Runs a hook script with `bash -e` in `cwd`, in a clean environment: a fixed PATH,
    the SSH session's HOME, USER and LOGNAME, then `env` (host variables, Ferry's values).
    No startup file is read (`--noprofile --norc`, no BASH_ENV); the hook's process group
    is killed when it ends."""
    base = {"PATH": path, "LANG": "C.UTF-8"}
    assignments = " ".join(f"{q(f'{name}={value}')}" for name, value in {**base, **env}.items())
    return (f"cd -- {q(cwd)} && exec env -i HOME=\"$HOME\" USER=\"$USER\" LOGNAME=\"$LOGNAME\" "
            f"{assignments} bash --noprofile --norc -c {q(_HOOK_WRAPPER)} ferry-hook {q(script)}")


def health_command(script: str, cwd: str, env: Mapping[str, str], path: str) -> str:
    """A health check command for `_verify`, run like a hook (`bash -e` in `cwd`, the
    same clean environment, no startup file) but without the hook's wrapper shell:
    run as `_verify`'s background job (never a process group leader), `setsid` makes it
    a session of its own without forking, so `_verify`'s shell can kill its group.
    Two processes fewer on every host than hook() (a fork and a shell)."""
    base = {"PATH": path, "LANG": "C.UTF-8"}
    assignments = " ".join(f"{q(f'{name}={value}')}" for name, value in {**base, **env}.items())
    return (f"cd -- {q(cwd)} && exec env -i HOME=\"$HOME\" USER=\"$USER\" LOGNAME=\"$LOGNAME\" "
            f"{assignments} setsid bash --noprofile --norc -e -c {q(script)} ferry-hook")


def health_url(url: str, timeout_s: float) -> str:
    seconds = max(1, int(timeout_s))
    return (f"curl -fsS -o /dev/null -w 'HTTP %{{http_code}}\\n' --max-time {seconds} {q(url)}"
            f" || wget -q -O /dev/null -T {seconds} {q(url)}")


def prune(deploy_path: str, keep: int) -> str:
    """Keeps the newest `keep` of Ferry's releases plus the one `current` points to."""
    return f"{enter_deploy_path(deploy_path)} || exit\n{_prune(keep, None)}"


def _prune(keep: int, current: str | None) -> str:
    """Run in the deploy path. Ferry's own releases are the directories of releases/
    named by a release id (digits, no leading zero) holding Ferry's marker file; of
    those, the newest `keep` stay, and the one `current` points to (`current`, when the
    caller knows it). Ferry's own unfinished `<id>.tmp` entries go; anything else in
    releases/ stays. Of the artifacts, the `keep` most recently received stay.
    Shell builtins only, plus one `rm` when there is something to remove."""
    keep = max(1, int(keep))
    return "\n".join([
        f"c={q(current)}" if current else "c=$(readlink current)",
        "set --; g=; p=",
        "for r in releases/*; do n=${r#releases/}",
        "  case $n in",
        "    *.tmp) case ${n%.tmp} in ''|0*|*[!0-9]*) ;; *) g=\"$g $r\";; esac; continue;;",
        "    ''|0*|*[!0-9]*) continue;;",
        "  esac",
        f"  [ -d \"$r\" ] && [ ! -L \"$r\" ] && [ -f \"$r/{MARKER}\" ] && set -- \"$@\" \"$n\"",
        "done",
        "for r in \"$@\"; do [ \"releases/$r\" = \"$c\" ] && continue; n=0",
        "  for o in \"$@\"; do [ \"$o\" -gt \"$r\" ] 2>/dev/null && n=$((n + 1)); done",
        f"  [ \"$n\" -ge {keep} ] && g=\"$g releases/$r\" && p=\"$p $r\"",
        "done",
        f"for r in {ARTIFACTS}/*.tar.gz; do n=${{r##*/}}; n=${{n%.tar.gz}}",
        "  case $n in *[!0-9a-f]*) continue;; esac; [ \"${#n}\" = 64 ] || continue; m=0",
        f"  for o in {ARTIFACTS}/*.tar.gz; do [ \"$o\" -nt \"$r\" ] && m=$((m + 1)); done",
        f"  [ \"$m\" -ge {keep} ] && g=\"$g $r\"",
        "done",
        "[ -z \"$g\" ] || rm -rf -- $g || exit",
        "[ -z \"$p\" ] || echo \"pruned releases$p\"",
    ])
