"""Output caps (services/output.py): bytes per line, bytes and lines per step, one marker
saying how much was dropped; and the same caps on a local hook run by bash."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.build.localrun import LocalHookError, run_local_hook
from services.output import OutputLines


def capped(line_max: int = 4096, total_max: int = 1 << 20, lines_max: int = 10_000):
    lines: list[str] = []
    return OutputLines(lines.append, line_max, total_max, lines_max), lines


def test_lines_past_the_line_cap_are_discarded_with_one_marker_saying_how_many():
    output, lines = capped(lines_max=3)
    output.feed(b"a\nb\nc\nd\ne\n")
    output.finish()
    assert lines == ["a", "b", "c", "[output truncated at 3 lines: 2 more lines (4 bytes) were "
                                   "discarded]"]
    assert output.truncated and output.lines == 3


def test_a_million_short_lines_make_at_most_the_line_cap_plus_one_marker():
    output, lines = capped()
    data = b"y\n" * 1_000_000
    for start in range(0, len(data), 32768):
        output.feed(data[start:start + 32768])
    output.finish()
    assert lines[:10_000] == ["y"] * 10_000
    assert lines[10_000:] == ["[output truncated at 10000 lines: 990000 more lines (1980000 bytes) "
                              "were discarded]"]
    assert output.output_bytes == 2_000_000


def test_output_past_the_byte_cap_is_counted_but_not_delivered():
    output, lines = capped(total_max=8)
    output.feed(b"abc\ndef\nghi\njkl\n")
    output.finish()
    assert lines[:2] == ["abc", "def"]
    assert lines[2].startswith("[output truncated at 8 bytes: ")
    assert output.output_bytes == 16


def test_exactly_the_line_cap_is_not_a_truncation():
    output, lines = capped(lines_max=2)
    output.feed(b"a\nb\n")
    output.finish()
    assert lines == ["a", "b"] and not output.truncated


def test_a_long_line_is_cut_at_the_line_cap_and_the_next_line_is_whole():
    output, lines = capped(line_max=5)
    output.feed(b"0123456789abcdef\nnext\n")
    output.finish()
    assert lines == ["01234 [line cut at 5 bytes]", "next"]


def test_stdout_and_stderr_are_assembled_into_lines_each_on_its_own():
    output, lines = capped()
    output.feed(b"out-", None)
    output.feed(b"err\n", 1)
    output.feed(b"line\n", None)
    output.finish()
    assert lines == ["err", "out-line"]


def test_crlf_line_endings_lose_their_carriage_return():
    output, lines = capped()
    output.feed(b"windows\r\nunix\n")
    output.finish()
    assert lines == ["windows", "unix"]


def test_finish_delivers_the_last_unterminated_line_once():
    output, lines = capped()
    output.feed(b"no newline")
    output.finish()
    output.finish()
    assert lines == ["no newline"]


def test_an_error_in_the_consumer_stops_delivery_and_is_kept():
    def explode(line: str) -> None:
        raise RuntimeError("consumer failed")

    output = OutputLines(explode, 4096, 1 << 20, 100)
    output.feed(b"a\nb\n")
    output.finish()
    assert isinstance(output.error, RuntimeError)


async def run_hook(tmp_path: Path, script: str, lines_max: int = 100) -> list[str]:
    lines: list[str] = []
    await run_local_hook(script, tmp_path, {}, timeout_s=60, line_max=4096,
                         output_max=1 << 20, lines_max=lines_max, on_line=lines.append)
    return lines


async def test_a_local_hook_printing_a_million_lines_is_capped_and_still_drained(tmp_path):
    lines = await run_hook(tmp_path, "yes | head -c 2000000; echo done", lines_max=100)
    assert lines[:100] == ["y"] * 100
    assert len(lines) == 101 and lines[100].startswith("[output truncated at 100 lines: ")


async def test_a_local_hook_that_fails_after_a_flood_still_reports_its_status(tmp_path):
    with pytest.raises(LocalHookError, match="status 3"):
        await run_hook(tmp_path, "yes | head -c 500000; exit 3")
