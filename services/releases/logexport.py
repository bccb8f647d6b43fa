"""Logs to take away: one host's log as plain text, a whole release's logs as a zip.

Both are streamed a page at a time (`HOST_LOG_PAGE` lines, read through
ReleaseService.host_log, so lines not stored yet are included while the release runs
here): memory stays bounded whatever the size of the log. Text is what people read:
each line as `<UTC time> [<stage>] <text>`, with terminal escapes (colours, cursor moves)
and control bytes removed, as the console shows them.

The zip is written with data descriptors (no seeking back to fix sizes), so it streams;
compressing is blocking work and runs in the executor, one page at a time.
"""

from __future__ import annotations

import asyncio
import re
import threading
import zipfile
from collections.abc import AsyncIterator
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from services.releases.records import LOCAL

if TYPE_CHECKING:
    from services.releases.service import ReleaseService

# The same escapes and controls the console's renderer drops (static/js/ansi.js).
ESCAPES = re.compile(r"\x1b\[[0-9;:?]*[A-Za-z]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
                     r"|\x1b[@-Z\\-_]?")
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def plain(line: str) -> str:
    """A log line without terminal escapes or control bytes (a tab stays)."""
    return CONTROLS.sub("", ESCAPES.sub("", line))


def text_line(entry: dict) -> str:
    """One stored log line as a line of the text download."""
    ts = entry.get("ts")
    when = (datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z") if isinstance(ts, int | float) else "-")
    return f"{when} [{entry.get('stage') or '-'}] {plain(str(entry.get('line', '')))}\n"


def file_name(release_id: int, host: str) -> str:
    """Host names are [A-Za-z0-9_.-] (the route), so this is a safe file name."""
    return f"release-{release_id}-{'build' if host == LOCAL else host}.log"


class _Sink:
    """What the zip writer writes to: bytes collected until taken (never seeks)."""

    def __init__(self) -> None:
        self._data = bytearray()
        self._lock = threading.Lock()

    def write(self, data: bytes) -> int:
        with self._lock:
            self._data += data
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        with self._lock:
            data, self._data = bytes(self._data), bytearray()
        return data


class LogExport:
    """Streams logs for download; reads through the release service, writes nothing."""

    def __init__(self, releases: ReleaseService, executor: Executor) -> None:
        self.releases = releases
        self.executor = executor

    async def host_pages(self, release_id: int, host: str) -> AsyncIterator[list[dict]]:
        """One host's log, page by page (NotFound for an unknown release, at once)."""
        after = 0
        while True:
            page = await self.releases.host_log(release_id, host, after)
            if page["lines"]:
                yield page["lines"]
            if not page["more"]:
                return
            after = page["next"]

    async def host_text(self, release_id: int, host: str) -> AsyncIterator[bytes]:
        async for lines in self.host_pages(release_id, host):
            yield "".join(text_line(line) for line in lines).encode("utf-8", "replace")

    async def release_zip(self, release_id: int) -> AsyncIterator[bytes]:
        """summary.txt, build.log (the local stages) and one `<host>.log` per host."""
        release = await self.releases.get(release_id)
        loop = asyncio.get_running_loop()
        sink = _Sink()
        archive = zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED)   # type: ignore[arg-type]
        try:
            await loop.run_in_executor(self.executor, archive.writestr, "summary.txt",
                                       summary(release))
            yield sink.take()
            for host in [LOCAL, *(run["host"] for run in release["host_runs"])]:
                async for chunk in self._member(archive, sink, release_id, host):
                    yield chunk
        finally:
            await loop.run_in_executor(self.executor, archive.close)
        yield sink.take()     # the central directory

    async def _member(self, archive: zipfile.ZipFile, sink: _Sink, release_id: int,
                      host: str) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        info = zipfile.ZipInfo("build.log" if host == LOCAL else f"{host}.log", _zip_time())
        info.compress_type = zipfile.ZIP_DEFLATED
        member = await loop.run_in_executor(
            self.executor, lambda: archive.open(info, "w", force_zip64=True))
        try:
            async for data in self.host_text(release_id, host):
                await loop.run_in_executor(self.executor, member.write, data)
                if chunk := sink.take():
                    yield chunk
        finally:
            await loop.run_in_executor(self.executor, member.close)
        yield sink.take()


def _zip_time() -> tuple[int, int, int, int, int, int]:
    now = datetime.now(UTC)
    return (now.year, now.month, now.day, now.hour, now.minute, now.second)


def summary(release: dict) -> str:
    """The release and each host's outcome, as text (first entry of the zip)."""
    lines = [f"release {release['id']}: {release['kind']} of {release['project']} "
             f"({release['environment']}) at {release['ref']} {release.get('sha') or ''}",
             f"state: {release['state']}" + (f" ({release['reason']})"
                                             if release.get("reason") else ""),
             f"by {release.get('created_by')}, created {release.get('created_at')}, "
             f"finished {release.get('finished_at') or '-'}", "", "hosts:"]
    for run in release["host_runs"]:
        reason = f": {run['reason']}" if run.get("reason") else ""
        lines.append(f"  {run['host']}  batch {run.get('batch')}  {run['state']}{reason}")
    return "\n".join(lines) + "\n"
