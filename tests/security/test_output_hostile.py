"""Hostile hook output on a real fleet through the real server: whatever a hook prints,
the release ends, the host's log is kept as plain data (numbered, in order, never twice,
within the caps) and the API answers with valid JSON."""

from __future__ import annotations

import pytest

from tests.deploykit import (
    TERMINAL,
    deploy_and_wait,
    hosts_by_name,
    register_fleet,
    register_project,
)

pytestmark = pytest.mark.slow
MAX_LINES = 1000
LINE_MAX = 4096


@pytest.fixture
def settings_overrides() -> dict:
    return {"ssh_step_output_max_lines": MAX_LINES, "hook_timeout_s": 20}


@pytest.fixture
async def registered(api, make_fleet, app_repo):
    fleet = await make_fleet(1)
    await register_fleet(api, fleet)
    await register_project(api, app_repo)
    return fleet


async def release_with_hook(api, script: str, hook: str = "before_release") -> dict:
    status, body = await api.put("/api/projects/app", {"hooks": {hook: script}})
    assert status == 200, body
    release = await deploy_and_wait(api, "v1")
    assert release["state"] in TERMINAL
    return release


async def log_of(api, release: dict, host: str = "host-0", stage: str = "before_release"):
    """Every stored line of one stage; the whole log must be numbered 1..N, once each."""
    lines, after = [], 0
    while True:
        status, page = await api.get(f"/api/releases/{release['id']}/hosts/{host}/log"
                                     f"?after={after}&limit=5000")
        assert status == 200, page
        lines += page["lines"]
        after = page["next"]
        if not page["more"]:
            break
    assert [line["n"] for line in lines] == list(range(1, len(lines) + 1))
    return [line["line"] for line in lines if line["stage"] == stage]


def succeeded(release: dict) -> None:
    assert release["state"] == "succeeded", release
    assert all(run["state"] == "ok" for run in release["host_runs"]), release["host_runs"]


async def test_escape_sequences_are_kept_as_data_and_never_split_or_join_lines(api, registered):
    release = await release_with_hook(
        api, r"printf 'red \033[31mALERT\033[0m\n\033]0;pwned\007title\n\033[2J\033[Hclear\n'")
    succeeded(release)
    assert await log_of(api, release) == ["red \x1b[31mALERT\x1b[0m", "\x1b]0;pwned\x07title",
                                          "\x1b[2J\x1b[Hclear"]


async def test_nul_bytes_do_not_cut_a_stored_line_short(api, registered):
    release = await release_with_hook(api, r"printf 'before\0after\n\0\n'")
    succeeded(release)
    assert await log_of(api, release) == ["before\x00after", "\x00"]


async def test_invalid_utf8_is_stored_with_replacement_characters(api, registered):
    release = await release_with_hook(api, r"printf 'bad \377\376 end\n\303\n'")
    succeeded(release)
    assert await log_of(api, release) == ["bad \ufffd\ufffd end", "\ufffd"]


async def test_carriage_return_progress_output_is_one_line_cut_at_the_line_cap(
        api, registered):
    release = await release_with_hook(
        api, "yes 'progress 42%' | head -n 50000 | tr '\\n' '\\r'; echo; echo done")
    succeeded(release)
    lines = await log_of(api, release)
    assert len(lines) == 2 and lines[1] == "done"
    assert lines[0].startswith("progress 42%\rprogress 42%\r")
    assert lines[0].endswith(f" [line cut at {LINE_MAX} bytes]")


async def test_one_enormous_line_without_a_newline_is_cut_and_the_rest_discarded(
        api, registered):
    release = await release_with_hook(api, "head -c 5000000 /dev/zero | tr '\\0' a")
    succeeded(release)
    lines = await log_of(api, release)
    assert lines[0] == "a" * LINE_MAX + f" [line cut at {LINE_MAX} bytes]"
    assert len(lines) == 2 and lines[1].startswith(f"[output truncated at {1024 * 1024} bytes")


async def test_a_flood_of_empty_lines_counts_against_the_line_cap(api, registered):
    release = await release_with_hook(api, "yes '' | head -n 200000")
    succeeded(release)
    lines = await log_of(api, release)
    assert lines[:MAX_LINES] == [""] * MAX_LINES
    assert lines[MAX_LINES:] == [f"[output truncated at {MAX_LINES} lines: 199000 more lines "
                                 "(199000 bytes) were discarded]"]


async def test_a_flood_on_stderr_is_capped_like_stdout(api, registered):
    release = await release_with_hook(api, "yes err | head -c 2000000 >&2")
    succeeded(release)
    lines = await log_of(api, release)
    assert lines[:MAX_LINES] == ["err"] * MAX_LINES
    assert len(lines) == MAX_LINES + 1 and lines[-1].startswith(f"[output truncated at {MAX_LINES} "
                                                                "lines")


async def test_stdout_and_stderr_written_together_never_share_a_line(api, registered):
    release = await release_with_hook(
        api, "for i in 1 2 3; do printf 'out%s' $i; printf 'err%s\\n' $i >&2; printf '\\n'; "
             "done")
    succeeded(release)
    assert sorted(await log_of(api, release)) == ["err1", "err2", "err3", "out1", "out2",
                                                  "out3"]


async def test_a_background_child_printing_after_the_hook_exits_cannot_hang_the_release(
        api, registered):
    release = await release_with_hook(api, "(sleep 0.5; yes bg) & echo started")
    run = hosts_by_name(release)["host-0"]
    assert run["state"] in ("ok", "failed"), run
    if run["state"] == "failed":
        assert "before_release" in run["reason"]
    lines = await log_of(api, release)
    assert lines[0] == "started" and len(lines) <= MAX_LINES + 2


async def test_binary_garbage_is_stored_as_readable_text_within_the_caps(api, registered):
    release = await release_with_hook(api, "head -c 300000 /dev/urandom")
    succeeded(release)
    lines = await log_of(api, release)
    assert 0 < len(lines) <= MAX_LINES + 1
    assert all(len(line.encode()) <= 3 * LINE_MAX + 100 for line in lines)


async def test_a_local_build_hook_flood_is_capped_like_a_remote_one(api, registered):
    release = await release_with_hook(api, "yes | head -c 2000000", hook="after_checkout")
    succeeded(release)
    lines = await log_of(api, release, host="_local", stage="after_checkout")
    assert lines[:MAX_LINES] == ["y"] * MAX_LINES
    assert lines[MAX_LINES:] == [f"[output truncated at {MAX_LINES} lines: 999000 more lines "
                                 "(1998000 bytes) were discarded]"]
