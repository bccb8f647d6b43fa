"""Host logs in the database: chunk documents, each a run of one host's consecutive lines.

    {_id: "<release>:<host>:<first n>", release_id, host, seq: <first n>, last_n,
     lines: [{n, ts, stage, line}]}

Rules that keep a flood of output from costing the release, the database or the server:
- Bounded documents: a chunk holds at most `log_batch_max_lines` lines and
  `log_batch_max_bytes` bytes (a BSON estimate), far under the 16 MiB document limit; a
  single line too big for a chunk is cut to fit.
- Idempotent writes: a chunk's `_id` follows from its first line, so retrying a chunk the
  database already has (its reply was lost) hits the unique `_id` and counts as stored.
  Nothing is ever stored twice, and `seq` (the first line's n) orders the chunks.
- A chunk the database refuses for a reason of its own is split in two and tried again;
  a single line it refuses is lost. Connection-type failures are retried with a growing
  delay for as long as the release runs (the release's back-pressure holds it meanwhile,
  see records.py); when it ends, at most `log_write_attempts` more times, then the lines
  are lost.
- Lost lines are counted (`lost`), never fatal: the release's outcome does not depend on
  its logs being stored.
- The server's log gets counts, sizes and error classes, never the lines.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from bson.errors import InvalidDocument
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from services.settings import Settings
from services.store import describe_db_error

log = logging.getLogger("ferry.records")
DUPLICATE_KEY = 11000
# Refusals no retry can change (the document itself is the problem): split or lose it.
# Any other write error is treated like a lost connection: retried, then lost.
REFUSED_CODES = frozenset({2, 22, 121, 10334, 17419, 17420})
LINE_OVERHEAD = 64     # BSON bytes of one line entry besides its stage and text
CUT_MARK = " [line cut: too large to store]"


def chunk_id(release_id: int, host: str, first_n: int) -> str:
    return f"{release_id}:{host}:{first_n}"


def line_bytes(entry: dict) -> int:
    """Upper estimate of the BSON size of one line entry."""
    return LINE_OVERHEAD + len(entry["stage"]) + len(entry["line"].encode("utf-8", "replace"))


class HostLogWriter:
    """Stores one release's log lines in chunk documents (see the module docstring)."""

    def __init__(self, collection: Any, release_id: int, settings: Settings) -> None:
        self._collection = collection
        self._release_id = release_id
        self._max_lines = max(1, settings.log_batch_max_lines)
        self._max_bytes = max(1024, settings.log_batch_max_bytes)
        self._attempts_max = max(1, settings.log_write_attempts)
        self._retry_s = settings.log_write_retry_s
        self._retry_max_s = settings.log_write_retry_max_s
        self._outbox: list[dict] = []    # chunks built, not yet stored
        self.waiting = 0                 # lines in those chunks
        self._failures = 0               # consecutive failed writes of the outbox
        self._retry_at = 0.0
        self.lost: Counter[str] = Counter()

    def add(self, logs: dict[str, list[dict]]) -> None:
        """Turn each host's new lines into chunks waiting to be stored."""
        for host, lines in logs.items():
            chunk: list[dict] = []
            size = 0
            for entry in lines:
                entry_size = line_bytes(entry)
                if entry_size > self._max_bytes:
                    entry = self._cut(entry)
                    entry_size = line_bytes(entry)
                if chunk and (len(chunk) >= self._max_lines
                              or size + entry_size > self._max_bytes):
                    self._outbox.append(self._chunk(host, chunk))
                    chunk, size = [], 0
                chunk.append(entry)
                size += entry_size
            if chunk:
                self._outbox.append(self._chunk(host, chunk))
            self.waiting += len(lines)

    def pending(self, host: str) -> list[dict]:
        """Lines of `host` built into chunks but not stored yet."""
        return [line for doc in self._outbox if doc["host"] == host for line in doc["lines"]]

    @property
    def idle(self) -> bool:
        return not self._outbox

    async def write(self, *, wait: bool) -> Counter[str]:
        """Store the waiting chunks. Returns the lines lost by this call, per host.

        `wait`: retry connection-type failures here, sleeping between attempts, until
        stored or given up (the end of a release). Otherwise a failure waits for a later
        call after its back-off delay. Never raises for a database error.
        """
        lost: Counter[str] = Counter()
        attempts = 0        # of this call: only a waiting call (the release's end) gives up
        while self._outbox:
            if not wait and time.monotonic() < self._retry_at:
                break
            outbox = self._outbox
            try:
                refused = await self._insert(outbox)
            except Exception as error:
                self._failures += 1
                attempts += 1
                lines, size = _totals(outbox)
                if wait and attempts >= self._attempts_max:
                    log.error("gave up storing %d log lines (%d bytes) of release %s after "
                              "%d attempts: %s", lines, size, self._release_id,
                              self._failures, describe_db_error(error))
                    self._lose(outbox, lost)
                    self._outbox, self._failures = [], 0
                    break
                delay = min(self._retry_s * 2 ** min(self._failures - 1, 30),
                            self._retry_max_s)
                log.warning("could not store %d log lines (%d bytes) of release %s: %s; "
                            "attempt %d, next in %.2fs", lines, size, self._release_id,
                            describe_db_error(error), self._failures, delay)
                if wait:
                    await asyncio.sleep(delay)
                else:
                    self._retry_at = time.monotonic() + delay
                    break
                continue
            self._failures = 0
            self._outbox = self._after_refusals(refused, lost)
        self.waiting = sum(len(doc["lines"]) for doc in self._outbox)
        self.lost.update(lost)
        return lost

    # -- internals ------------------------------------------------------------------

    def _chunk(self, host: str, lines: list[dict]) -> dict:
        first = lines[0]["n"]
        return {"_id": chunk_id(self._release_id, host, first), "release_id": self._release_id,
                "host": host, "seq": first, "last_n": lines[-1]["n"], "lines": lines}

    def _cut(self, entry: dict) -> dict:
        room = max(0, self._max_bytes - LINE_OVERHEAD - len(entry["stage"]) - len(CUT_MARK))
        text = entry["line"].encode("utf-8", "replace")[:room].decode("utf-8", "ignore")
        return {**entry, "line": text + CUT_MARK}

    async def _insert(self, chunks: list[dict]) -> list[tuple[dict, Any]]:
        """Insert `chunks`; returns those the database refused, with the refusal's code.
        A duplicate `_id` is a chunk an earlier try stored: done. Raises for the rest."""
        try:
            await self._collection.insert_many(chunks, ordered=False)
            return []
        except BulkWriteError as error:
            refused = []
            for failure in error.details.get("writeErrors") or []:
                code = failure.get("code")
                if code in REFUSED_CODES:
                    refused.append((chunks[failure["index"]], code))
                elif code != DUPLICATE_KEY:
                    raise
            return refused
        except InvalidDocument:   # the driver refused one (e.g. too large): find which
            refused = []
            for chunk in chunks:
                try:
                    await self._collection.insert_one(chunk)
                except DuplicateKeyError:
                    pass
                except InvalidDocument as error:
                    refused.append((chunk, type(error).__name__))
                except WriteError as error:
                    if error.code not in REFUSED_CODES:
                        raise
                    refused.append((chunk, error.code))
            return refused

    def _after_refusals(self, refused: list[tuple[dict, Any]], lost: Counter[str]) -> list[dict]:
        """Split each refused chunk in two to be tried again; a refused single line is lost."""
        again: list[dict] = []
        for chunk, code in refused:
            lines = chunk["lines"]
            count, size = _totals([chunk])
            if len(lines) == 1:
                log.error("the database refused a log line (%d bytes) of release %s, host %s "
                          "(code %s); it is lost", size, self._release_id, chunk["host"], code)
                self._lose([chunk], lost)
                continue
            log.warning("the database refused %d log lines (%d bytes) of release %s, host %s "
                        "(code %s); storing them in two halves", count, size,
                        self._release_id, chunk["host"], code)
            half = len(lines) // 2
            again += [self._chunk(chunk["host"], lines[:half]),
                      self._chunk(chunk["host"], lines[half:])]
        return again

    @staticmethod
    def _lose(chunks: list[dict], lost: Counter[str]) -> None:
        for chunk in chunks:
            lost[chunk["host"]] += len(chunk["lines"])


def _totals(chunks: list[dict]) -> tuple[int, int]:
    lines = sum(len(chunk["lines"]) for chunk in chunks)
    return lines, sum(line_bytes(line) for chunk in chunks for line in chunk["lines"])
