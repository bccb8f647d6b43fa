"""How a followed release looks: a live rich progress bar on a terminal, plain lines on a
CI log (no redrawing), nothing but the final JSON with `-o json`."""

from __future__ import annotations

import json
import sys
import time

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from cli.follow import Display
from cli.follow import Progress as ReleaseProgress

PLAIN_EVERY_S = 5.0


def summary(progress: ReleaseProgress) -> str:
    counts = (f"{progress.count('ok')} ok, {progress.count('failed')} failed, "
              f"{progress.count('running')} running, {progress.count('pending')} pending")
    return f"{progress.done}/{progress.total} done ({counts})"


def final_line(progress: ReleaseProgress, release: dict | None) -> str:
    if release is None:
        return (f"release {progress.release_id} still {progress.state} after the timeout: "
                f"{summary(progress)} (the release goes on)")
    seconds = (release.get("duration_ms") or 0) / 1000
    return (f"release {progress.release_id} {release['state']} in {seconds:.1f}s: "
            f"{progress.count('ok')} ok, {progress.count('failed')} failed, "
            f"{progress.count('skipped', 'cancelled', 'interrupted', 'rolled_back')} other, "
            f"{progress.total} hosts")


class PlainDisplay(Display):
    """CI logs: a line when the state changes, a host fails, or every few seconds."""

    def __init__(self, out=sys.stdout) -> None:
        self.out = out
        self._last = 0.0
        self._state = ""

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def started(self, progress: ReleaseProgress) -> None:
        self._print(f"release {progress.release_id}: {progress.state}, {summary(progress)}")
        self._state, self._last = progress.state, time.monotonic()

    def changed(self, progress: ReleaseProgress) -> None:
        now = time.monotonic()
        if progress.state != self._state or now - self._last >= PLAIN_EVERY_S:
            eta = progress.eta_s()
            self._print(f"release {progress.release_id}: {progress.state}, {summary(progress)}"
                        + (f", about {eta:.0f}s left" if eta is not None else ""))
            self._state, self._last = progress.state, now

    def host_failed(self, progress: ReleaseProgress, host: str, reason: str) -> None:
        self._print(f"host {host} failed: {reason}")

    def note(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def finished(self, progress: ReleaseProgress, release: dict | None) -> None:
        self._print(final_line(progress, release))


class TerminalDisplay(Display):
    """A terminal: one bar redrawn in place, failing hosts printed above it as they fail."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.bar = Progress(TextColumn("[bold]{task.fields[label]}"), BarColumn(),
                            TextColumn("{task.completed}/{task.total}"),
                            TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                            TextColumn("{task.fields[eta]}"), console=console, transient=True)
        self.task: TaskID | None = None

    def _fields(self, progress: ReleaseProgress) -> dict:
        eta = progress.eta_s()
        return {"label": f"#{progress.release_id} {progress.state}",
                "counts": f"{progress.count('ok')} ok · {progress.count('failed')} failed",
                "eta": f"~{eta:.0f}s left" if eta is not None else ""}

    def started(self, progress: ReleaseProgress) -> None:
        self.bar.start()
        self.task = self.bar.add_task("release", total=progress.total or None,
                                      completed=progress.done, **self._fields(progress))

    def changed(self, progress: ReleaseProgress) -> None:
        if self.task is not None:
            self.bar.update(self.task, total=progress.total or None, completed=progress.done,
                            **self._fields(progress))

    def host_failed(self, progress: ReleaseProgress, host: str, reason: str) -> None:
        self.console.print(Text.assemble(("✗ ", "bold red"), (host, "bold"), f": {reason}"))

    def note(self, text: str) -> None:
        self.console.print(Text(text, style="dim"))

    def finished(self, progress: ReleaseProgress, release: dict | None) -> None:
        self.bar.stop()
        ok = release is not None and release["state"] == "succeeded"
        self.console.print(Text(final_line(progress, release),
                                style="bold green" if ok else "bold red"))


class JsonDisplay(Display):
    """`-o json`: nothing while following; the final release (or a timeout note) as JSON."""

    def finished(self, progress: ReleaseProgress, release: dict | None) -> None:
        body = release if release is not None else {
            "id": progress.release_id, "state": progress.state, "timed_out": True}
        print(json.dumps(body, indent=2, default=str), flush=True)


def display_for(output: str) -> Display:
    if output == "json":
        return JsonDisplay()
    console = Console()
    return TerminalDisplay(console) if console.is_terminal else PlainDisplay()
