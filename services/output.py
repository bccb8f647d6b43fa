"""Capped output lines: how a command's output (a remote step over SSH, a local hook)
becomes log lines, whatever the command prints.

Three caps, all per command: bytes per line (`ssh_line_max_bytes`: a longer line is cut
there and ends with a marker), bytes in all (`ssh_step_output_max_bytes`) and lines in
all (`ssh_step_output_max_lines`). Counting bytes alone is not enough: a million
two-byte lines fit in 2 MB but make a million log entries, each an event, a database
row and a DOM node. Once a cap is hit, output is still read (so the command never blocks
on a full pipe) but discarded, and `finish()` adds one marker line saying how much was
dropped. Nothing is buffered beyond one line per stream.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable


class OutputLines:
    """Splits one command's output into capped lines for `on_line`.

    `feed(data, stream)` takes raw bytes as they arrive; each stream (stdout, stderr) is
    assembled into lines on its own, so a line never mixes the two. `finish()` ends the
    output: the last unterminated line of each stream, then the marker if anything was
    discarded. An exception from `on_line` stops delivery and is kept in `error`.
    """

    def __init__(self, on_line: Callable[[str], None] | None, line_max: int,
                 total_max: int, lines_max: int) -> None:
        self._on_line = on_line
        self._line_max, self._total_max, self._lines_max = line_max, total_max, lines_max
        self._partial: dict[Hashable, bytearray] = {}
        self._cutting: dict[Hashable, bool] = {}
        self.output_bytes = 0      # everything received, kept or not
        self.lines = 0             # lines delivered to on_line (markers excluded)
        self.truncated = False     # a cap was hit: some output was discarded
        self._cut_by = ""
        self._dropped_bytes = 0
        self._dropped_lines = 0
        self._finished = False
        self.error: BaseException | None = None

    def feed(self, data: bytes, stream: Hashable = None) -> None:
        budget = self._total_max - self.output_bytes
        self.output_bytes += len(data)
        if self.truncated:
            self._drop(data)
            return
        if len(data) > budget:
            kept = self._split(data[:budget], stream)
            self._drop(data[kept:])
            if not self.truncated:
                self._cut(f"{self._total_max} bytes")
        else:
            kept = self._split(data, stream)
            if kept < len(data):
                self._drop(data[kept:])

    def finish(self) -> None:
        """End of output (also after a timeout or a lost connection): deliver what is
        left, then say what was discarded. Safe to call more than once."""
        if self._finished:
            return
        self._finished = True
        if not self.truncated:
            for stream, buf in self._partial.items():
                if buf and not self._cutting[stream]:
                    self._deliver_bytes(stream, buf)
        for buf in self._partial.values():
            buf.clear()
        if self.truncated:
            self._emit(f"[output truncated at {self._cut_by}: {self._dropped_lines} more "
                       f"lines ({self._dropped_bytes} bytes) were discarded]")

    # -- internals ------------------------------------------------------------------

    def _split(self, data: bytes, stream: Hashable) -> int:
        """Take lines out of `data`; returns how many bytes were used before a cap."""
        buf = self._partial.get(stream)
        if buf is None:
            buf = self._partial[stream] = bytearray()
            self._cutting[stream] = False
        start = 0
        while (end := data.find(b"\n", start)) >= 0:
            if not self._cutting[stream]:
                self._append(data[start:end], stream, buf)
                if not self._cutting[stream]:
                    self._deliver_bytes(stream, buf, newline=True)
            buf.clear()
            self._cutting[stream] = False
            start = end + 1
            if self.truncated:
                return start
        if not self._cutting[stream]:
            self._append(data[start:], stream, buf)
        return len(data)

    def _append(self, piece: bytes, stream: Hashable, buf: bytearray) -> None:
        room = self._line_max - len(buf)
        if len(piece) <= room:
            buf += piece
            return
        buf += piece[:room]
        self._deliver_bytes(stream, buf, cut=True)
        if self.truncated:   # the line cap came first: the rest of this line is dropped too
            self._dropped_bytes += len(piece) - room
        buf.clear()
        self._cutting[stream] = True

    def _deliver_bytes(self, stream: Hashable, buf: bytearray, cut: bool = False,
                       newline: bool = False) -> None:
        """One line out (and `buf` emptied), unless the line cap is reached first."""
        if self.truncated:
            buf.clear()
            return
        if self.lines >= self._lines_max:
            self._dropped_lines += 1
            self._dropped_bytes += len(buf) + newline
            buf.clear()
            self._cut(f"{self._lines_max} lines")
            return
        text = buf.decode("utf-8", "replace").removesuffix("\r")
        buf.clear()
        self.lines += 1
        self._emit(f"{text} [line cut at {self._line_max} bytes]" if cut else text)

    def _cut(self, by: str) -> None:
        self.truncated = True
        self._cut_by = by
        for stream, buf in self._partial.items():
            if buf:  # a line already begun on another stream is dropped whole
                self._dropped_lines += 1
                self._dropped_bytes += len(buf)
            buf.clear()
            self._cutting[stream] = False

    def _drop(self, data: bytes) -> None:
        self._dropped_bytes += len(data)
        self._dropped_lines += data.count(b"\n")

    def _emit(self, line: str) -> None:
        if self._on_line is None or self.error is not None:
            return
        try:
            self._on_line(line)
        except Exception as exc:  # reported by the caller, after the command is closed
            self.error = exc
