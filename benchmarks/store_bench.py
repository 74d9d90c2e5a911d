"""Job store speed on Postgres, as ratios measured side by side in one run.

1. Booking + finishing: the cost of one book() + finish() cycle on a table of
   1,000 START jobs and on one of 1,000,000, and the ratio (target: <= 1.2,
   i.e. booking does not slow down as the table grows: it walks the index).
2. Bulk insert: JobStore.insert (hashing, dedup, ids returned) against a raw
   COPY of the same rows into an identical table (target: >= 0.5x of COPY).

Usage: python -m benchmarks.store_bench [--db postgresql://root@127.0.0.1/test]
Each measurement is repeated, alternating the two sides, and the median kept:
this machine is noisy, and only the ratios mean anything.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Iterator

import psycopg
from sqlalchemy import text

from benchmarks.common import alternate, drop
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

EXPERIMENT = "examples.count.experiment"


def jobs(count: int, tag: str) -> Iterator[NewJob]:
    for i in range(count):
        yield NewJob(EXPERIMENT, {"lr": i * 1e-6, "model.kind": "cnn", "seed": i, "tag": tag})


def fresh_store(db: str, prefix: str) -> JobStore:
    return JobStore.open(f"{db}/{prefix}_{uuid.uuid4().hex[:8]}")


def fill(store: JobStore, count: int) -> None:
    for _ in store.insert(jobs(count, store.path.table)):
        pass
    with store.engine.begin() as connection:
        connection.execute(text(f"ANALYZE {store.path.table}"))


def book_and_finish(store: JobStore, cycles: int) -> float:
    """Seconds per book() + finish() cycle."""
    started = time.perf_counter()
    for _ in range(cycles):
        job = store.book()
        assert job is not None, "the table ran out of START jobs"
        store.finish(job, Status.DONE, {"result": 1.0})
    return (time.perf_counter() - started) / cycles


def insert_rate(db: str, count: int) -> float:
    store = fresh_store(db, "bench_insert")
    try:
        batch = list(jobs(count, "insert"))
        started = time.perf_counter()
        inserted = sum(len(rows) for rows in store.insert(batch))
        assert inserted == count
        return count / (time.perf_counter() - started)
    finally:
        drop(store)


def copy_rate(db: str, count: int) -> float:
    store = fresh_store(db, "bench_copy")
    try:
        rows = [
            (job.experiment, json.dumps(job.params), json.dumps(job.params), job.param_hash, 1.0)
            for job in jobs(count, "copy")
        ]  # prepared beforehand: COPY is measured alone
        raw = store.engine.raw_connection()
        connection = raw.driver_connection
        assert isinstance(connection, psycopg.Connection), "COPY needs the psycopg driver"
        columns = "experiment, params, state, param_hash, priority"
        started = time.perf_counter()
        statement = f"COPY {store.path.table} ({columns}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
        raw.commit()
        elapsed = time.perf_counter() - started
        raw.close()
        return count / elapsed
    finally:
        drop(store)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgresql://root@127.0.0.1/test")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--cycles", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--insert-rows", type=int, default=100_000)
    args = parser.parse_args()

    small, large = fresh_store(args.db, "bench_small"), fresh_store(args.db, "bench_large")
    try:
        print(f"filling tables of {args.small:,} and {args.large:,} START jobs ...", flush=True)
        fill(small, args.small)
        started = time.perf_counter()
        fill(large, args.large)
        print(f"  {args.large:,} rows inserted in {time.perf_counter() - started:.1f}s")
        cost_small, cost_large = alternate(
            lambda: book_and_finish(small, args.cycles),
            lambda: book_and_finish(large, args.cycles),
            args.rounds,
        )
    finally:
        drop(small)
        drop(large)
    print("book + finish, per cycle (median of alternating rounds):")
    print(f"  {args.small:>9,} rows: {cost_small * 1e3:7.3f} ms  ({1 / cost_small:,.0f} jobs/s)")
    print(f"  {args.large:>9,} rows: {cost_large * 1e3:7.3f} ms  ({1 / cost_large:,.0f} jobs/s)")
    print(f"  ratio large/small: {cost_large / cost_small:.2f}x (target <= 1.2x)")

    rate_insert, rate_copy = alternate(
        lambda: insert_rate(args.db, args.insert_rows),
        lambda: copy_rate(args.db, args.insert_rows),
        max(1, args.rounds // 2),
    )
    print(f"bulk insert of {args.insert_rows:,} jobs (median of alternating rounds):")
    print(f"  JobStore.insert: {rate_insert:10,.0f} rows/s (hashing, dedup and ids included)")
    print(f"  raw COPY:        {rate_copy:10,.0f} rows/s (rows prepared beforehand)")
    print(f"  ratio insert/COPY: {rate_insert / rate_copy:.2f}x (target >= 0.5x)")


if __name__ == "__main__":
    main()
