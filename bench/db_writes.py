"""What a write to the embedded database costs once it has taken many: retryable or not.

    python -m bench.db_writes [--writes 10500] [--measured 500]

A driver sends a retryable write (MongoDB's default, `retryWrites=true`, set explicitly
here) with a transaction number, and the server keeps a record of each one so that a
retry after a lost reply is answered instead of run twice. SecantusDB keeps these records for 30
minutes, up to 10,000, and on every write scans them all for expired ones and, past the
cap, sorts them to drop the oldest. Ferry connects to its embedded database with
`retryWrites=false` (services/embedded_db.py, `database_url`). This bench times the same
`$inc` update on one document, through one client each way, on the data directory's
kind of database (on disk, synced on commit, as Ferry starts it): the first 200 writes,
then after `--writes` more (past the cap), `--measured` writes.
Final line: JSON {"retryable": {...}, "not_retryable": {...}, "writes_before": N}.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from pymongo import AsyncMongoClient

from services.embedded_db import EmbeddedDatabase


async def updates_ms(collection, count: int) -> float:
    """Mean clock time of `count` sequential updates, in ms."""
    start = time.perf_counter()
    for _ in range(count):
        await collection.update_one({"_id": 0}, {"$inc": {"n": 1}})
    return round((time.perf_counter() - start) / count * 1000, 2)


async def timed(url: str, name: str, writes: int, measured: int) -> dict:
    client = AsyncMongoClient(url)
    try:
        collection = client.bench_db_writes[name]
        await collection.insert_one({"_id": 0, "n": 0})
        first = await updates_ms(collection, 200)
        await updates_ms(collection, writes)
        return {"first_200_ms": first,
                f"after_{writes + 200}_ms": await updates_ms(collection, measured)}
    finally:
        await client.close()


async def main(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as tmp:
        async with EmbeddedDatabase(Path(tmp) / "db", home=Path(tmp)) as database:
            ferry_url = database.url
            retryable_url = ferry_url.replace("retryWrites=false", "retryWrites=true")
            if retryable_url == ferry_url:
                raise SystemExit(f"{ferry_url}: Ferry's URL no longer says retryWrites=false")
            result = {"writes_before": args.writes + 200, "ferry_url_options":
                      ferry_url.split("?", 1)[1]}
            for name, url in (("retryable", retryable_url), ("not_retryable", ferry_url)):
                result[name] = await timed(url, name, args.writes, args.measured)
    return result


def count(text: str) -> int:
    """A number of writes: 1 or more (a mean of none is no figure)."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Ferry embedded database write bench")
    parser.add_argument("--writes", type=count, default=10_500,
                        help="writes between the first 200 and the measured ones")
    parser.add_argument("--measured", type=count, default=500)
    return parser.parse_args(argv)


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(parse_args()))), flush=True)
