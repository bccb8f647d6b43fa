"""What the `ferry` command prints of other people's bytes (host output, chat text): on a
terminal only colour escapes pass, in a pipe none; no other control byte ever does."""

from __future__ import annotations

from cli.streams import clean

HOSTILE = ("ok \x1b[31mred\x1b[0m \x1b]0;owned title\x07 \x1b[2J\x1b[H wiped "
           "\x1b[?1049h alt \x08\x08back \x9b31m csi8")


def test_a_pipe_gets_no_escape_at_all():
    out = clean(HOSTILE, terminal=False)
    assert "\x1b" not in out and "\x07" not in out and "\x08" not in out and "\x9b" not in out


def test_a_terminal_gets_colour_but_no_other_escape():
    out = clean(HOSTILE, terminal=True)
    assert "\x1b[31m" in out
    for sequence in ("\x1b]0;", "\x1b[2J", "\x1b[H", "\x1b[?1049h", "\x07", "\x08", "\x9b"):
        assert sequence not in out, repr(sequence)


def test_a_terminal_line_with_colour_ends_with_a_reset():
    assert clean("\x1b[1mbold", terminal=True).endswith("\x1b[0m")
    assert clean("plain", terminal=True) == "plain"
