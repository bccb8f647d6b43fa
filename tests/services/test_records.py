"""Host log storage (releases/logstore.py, records.py) against the real database: bounded
chunk documents, idempotent retries, refusals split or counted, never a payload in the
server's log, and a release record that never fails because its logs could not be kept."""

from __future__ import annotations

import asyncio
import logging

import bson
import pymongo
import pytest

from services.embedded_db import free_port
from services.releases.logstore import CUT_MARK, HostLogWriter, chunk_id
from services.releases.records import ReleaseRecord, new_host_run
from services.store import utcnow

RELEASE = 7


def lines(count: int, text: str = "y", stage: str = "before_release", first: int = 1):
    return [{"n": n, "ts": 0.0, "stage": stage, "line": text} for n in range(first,
                                                                           first + count)]


async def stored(services, host: str = "web-1") -> tuple[list[dict], list[int]]:
    docs = await services.store.host_logs.find({"release_id": RELEASE, "host": host}).sort(
        "seq", 1).to_list(None)
    return docs, [line["n"] for doc in docs for line in doc["lines"]]


def writer(services, **changes) -> HostLogWriter:
    return HostLogWriter(services.store.host_logs, RELEASE, services.settings.replace(**changes))


async def test_no_log_chunk_exceeds_the_byte_budget_whatever_the_lines(services):
    logs = writer(services, log_batch_max_bytes=256 * 1024)
    logs.add({"web-1": lines(2000, "x" * 4000)})
    assert await logs.write(wait=True) == {}
    docs, numbers = await stored(services)
    assert numbers == list(range(1, 2001))
    assert max(len(bson.encode(doc)) for doc in docs) <= 256 * 1024


async def test_no_log_chunk_holds_more_lines_than_the_line_budget(services):
    logs = writer(services, log_batch_max_lines=100)
    logs.add({"web-1": lines(1050)})
    await logs.write(wait=True)
    docs, numbers = await stored(services)
    assert numbers == list(range(1, 1051))
    assert [len(doc["lines"]) for doc in docs] == [100] * 10 + [50]


async def test_a_chunk_stored_before_its_reply_was_lost_is_not_stored_twice(services):
    logs = writer(services, log_batch_max_lines=10)
    logs.add({"web-1": lines(25)})
    # The first try of the first chunk reached the database; only its reply was lost.
    await services.store.host_logs.insert_one({
        "_id": chunk_id(RELEASE, "web-1", 1), "release_id": RELEASE, "host": "web-1",
        "seq": 1, "last_n": 10, "lines": lines(10)})
    assert await logs.write(wait=True) == {}
    _, numbers = await stored(services)
    assert numbers == list(range(1, 26))


async def test_a_chunk_over_the_database_limit_is_split_and_stored_once_without_its_lines_in_the_log(  # noqa: E501
        services, caplog):
    caplog.set_level(logging.DEBUG, logger="ferry")
    # The byte budget disabled: one chunk of ~24 MB, which the database refuses.
    logs = writer(services, log_batch_max_bytes=64 * 1024 * 1024, log_batch_max_lines=10**6)
    logs.add({"web-1": lines(6000, "secret-output-" + "z" * 4000)})
    assert await logs.write(wait=True) == {}
    docs, numbers = await stored(services)
    assert numbers == list(range(1, 6001)) and len(docs) >= 2
    assert "refused 6000 log lines" in caplog.text
    assert "secret-output" not in caplog.text and len(caplog.text) < 10_000


async def test_a_line_the_database_refuses_is_lost_and_counted_not_retried_forever(
        services, caplog):
    logs = writer(services, log_batch_max_bytes=64 * 1024 * 1024)
    logs.add({"web-1": [*lines(1), *lines(1, "q" * 17 * 1024 * 1024, first=2),
                        *lines(1, first=3)]})
    assert await logs.write(wait=True) == {"web-1": 1}
    _, numbers = await stored(services)
    assert numbers == [1, 3]
    assert "qqqq" not in caplog.text


async def test_a_line_too_big_for_a_chunk_is_cut_to_fit(services):
    logs = writer(services, log_batch_max_bytes=64 * 1024)
    logs.add({"web-1": lines(1, "w" * 100_000)})
    await logs.write(wait=True)
    docs, _ = await stored(services)
    line = docs[0]["lines"][0]["line"]
    assert line.endswith(CUT_MARK) and len(line) < 64 * 1024


@pytest.fixture
async def unreachable_db():
    """A real client to a loopback port where nothing listens."""
    client = pymongo.AsyncMongoClient(f"mongodb://127.0.0.1:{free_port()}/",
                                      serverSelectionTimeoutMS=100)
    yield client.ferry
    await client.close()


async def test_an_unreachable_database_is_retried_then_the_lines_are_counted_lost(
        services, unreachable_db, caplog):
    logs = HostLogWriter(unreachable_db.host_logs, RELEASE, services.settings.replace(
        log_write_attempts=3, log_write_retry_s=0.01))
    logs.add({"web-1": lines(5, "hidden-line")})
    assert await logs.write(wait=True) == {"web-1": 5}
    assert caplog.text.count("could not store 5 log lines") == 2
    assert "gave up storing 5 log lines" in caplog.text
    assert "hidden-line" not in caplog.text


async def test_a_failed_write_waits_its_back_off_before_the_next_try(services, unreachable_db):
    logs = HostLogWriter(unreachable_db.host_logs, RELEASE, services.settings.replace(
        log_write_attempts=5, log_write_retry_s=3600))
    logs.add({"web-1": lines(3)})
    assert await logs.write(wait=False) == {}
    assert await logs.write(wait=False) == {}   # within its back-off: not tried again
    assert logs._failures == 1 and len(logs.pending("web-1")) == 3


class ReplyEater:
    """A loopback TCP proxy in front of the database. While `eat_replies` is set, requests
    reach the database but its replies do not: the client's connection is cut as soon as
    the database answers (a write done whose reply was lost)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.eat_replies = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        db_r, db_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {client_w, db_w}

        async def pipe(reader, writer, replies: bool) -> None:
            try:
                while data := await reader.read(65536):
                    if replies and self.eat_replies:
                        break
                    writer.write(data)
                    await writer.drain()
            except OSError:
                pass
            finally:
                for w in (client_w, db_w):
                    w.close()
                self._writers -= {client_w, db_w}

        await asyncio.gather(pipe(client_r, db_w, False), pipe(db_r, client_w, True))


@pytest.fixture
async def reply_eater(settings):
    proxy = ReplyEater(int(settings.mongo_url.rsplit(":", 1)[1].split("/")[0]))
    await proxy.start()
    client = pymongo.AsyncMongoClient(
        f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true",
        serverSelectionTimeoutMS=500, retryWrites=False)
    yield proxy, client[settings.db_name]
    await client.close()
    await proxy.close()


async def test_a_retry_after_a_lost_reply_stores_each_line_exactly_once(services, reply_eater,
                                                                       caplog):
    proxy, db = reply_eater
    logs = HostLogWriter(db.host_logs, RELEASE, services.settings.replace(
        log_batch_max_lines=10, log_write_retry_s=0))
    logs.add({"web-1": lines(35, "secret-line")})
    await db.command("ping")
    proxy.eat_replies = True
    assert await logs.write(wait=False) == {}       # written, but the reply never came
    proxy.eat_replies = False
    _, numbers = await stored(services)
    assert numbers == list(range(1, 36))            # the first try did reach the database
    assert await logs.write(wait=True) == {} and logs.idle
    _, numbers = await stored(services)
    assert numbers == list(range(1, 36))            # and the retry stored nothing twice
    assert "could not store 35 log lines" in caplog.text
    assert "secret-line" not in caplog.text


def record_for(services, **changes) -> ReleaseRecord:
    release = {"_id": RELEASE, "project": "app", "environment": "production",
               "kind": "deploy", "ref": "v1", "sha": None, "state": "running",
               "created_at": utcnow()}
    hosts = {"web-1": new_host_run(RELEASE, "web-1", 1)}
    return ReleaseRecord(services.store, services.events, release, hosts,
                         services.settings.replace(**changes))


async def test_a_release_record_flush_survives_a_refused_log_line_and_counts_it(services):
    record = record_for(services, log_batch_max_bytes=64 * 1024 * 1024)
    record.log("web-1", "before_release", "ok line")
    record.log("web-1", "before_release", "r" * 17 * 1024 * 1024)
    await record.flush()
    run = await services.store.host_runs.find_one({"_id": f"{RELEASE}:web-1"})
    assert run["log_lines_lost"] == 1
    _, numbers = await stored(services)
    assert numbers == [1]


async def test_log_lines_beyond_the_waiting_cap_are_counted_lost_not_held_in_memory(services):
    record = record_for(services, log_pending_max_lines=10)
    for index in range(25):
        record.log("web-1", "after_release", f"line {index}")
    assert len(record.pending_log("web-1")) == 10
    await record.flush()
    run = await services.store.host_runs.find_one({"_id": f"{RELEASE}:web-1"})
    assert run["log_lines_lost"] == 15
    _, numbers = await stored(services)
    assert numbers == list(range(1, 11))


async def test_logs_stored_before_chunks_had_last_n_are_still_read_in_pages(services):
    await services.store.releases.insert_one({"_id": RELEASE, "project": "app"})
    await services.store.host_logs.insert_many([
        {"release_id": RELEASE, "host": "web-1", "seq": 1, "lines": lines(3)},
        {"release_id": RELEASE, "host": "web-1", "seq": 2, "lines": lines(3, first=4)}])
    logs = writer(services)
    logs.add({"web-1": lines(3, first=7)})
    await logs.write(wait=True)
    page = await services.releases.host_log(RELEASE, "web-1", after=2, limit=5)
    assert [line["n"] for line in page["lines"]] == [3, 4, 5, 6, 7] and page["more"]
    page = await services.releases.host_log(RELEASE, "web-1", after=7)
    assert [line["n"] for line in page["lines"]] == [8, 9] and not page["more"]
