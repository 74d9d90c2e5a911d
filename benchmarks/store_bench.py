"""Job store speed on Postgres, as ratios measured side by side in one run.

1. Booking + finishing: the cost of one book() + finish() cycle on a table of
   1,000 START jobs and on one of 1,000,000, and the ratio (target: <= 1.2,
   i.e. booking does not slow down as the table grows: it walks the index).
2. Bulk insert: JobStore.insert (hashing, dedup, ids returned) against a raw
   COPY of the same rows into an identical table (target: >= 0.5x of COPY).

Usage: python -m benchmarks.store_bench [--scale 1.0] [--db URL]
Each measurement is repeated, alternating the two sides, and the median kept:
this machine is noisy, and only the ratios mean anything.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import psycopg

from benchmarks.common import (
    Result,
    Settings,
    alternate,
    drop,
    filled,
    ratio,
    report,
    settings_from_arguments,
)
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

EXPERIMENT = "examples.count.experiment"
SMALL = 1_000
CYCLES = 150
ROUNDS = 5


def jobs(count: int, tag: str) -> Iterator[NewJob]:
    for i in range(count):
        yield NewJob(EXPERIMENT, {"lr": i * 1e-6, "model.kind": "cnn", "seed": i, "tag": tag})


def fresh_store(db: str, prefix: str) -> JobStore:
    return JobStore.open(f"{db}/{prefix}_{uuid.uuid4().hex[:8]}")


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


def measure(settings: Settings) -> list[Result]:
    large = settings.size(1_000_000, least=10 * SMALL)
    small_store = filled(settings.db, "bench_small", SMALL, start=SMALL)
    large_store = filled(settings.db, "bench_large", large, start=large)
    try:
        cost_small, cost_large = alternate(
            lambda: book_and_finish(small_store, CYCLES),
            lambda: book_and_finish(large_store, CYCLES),
            rounds=ROUNDS,
        )
    finally:
        drop(small_store)
        drop(large_store)
    count = settings.size(100_000, least=1_000)
    rate_insert, rate_copy = alternate(
        lambda: insert_rate(settings.db, count), lambda: copy_rate(settings.db, count), rounds=2
    )
    return [
        ratio(f"book + finish, {large:,} vs {SMALL:,} START rows (time)", cost_large, cost_small,
              ("<=", 1.2), f"{cost_large * 1e3:.2f} vs {cost_small * 1e3:.2f} ms per job",
              large_s=cost_large, small_s=cost_small),
        ratio(f"bulk insert of {count:,} jobs: JobStore.insert / raw COPY", rate_insert,
              rate_copy, (">=", 0.5), f"{rate_insert:,.0f} vs {rate_copy:,.0f} rows/s",
              insert=rate_insert, copy=rate_copy),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
