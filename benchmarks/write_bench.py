"""What a run's writes cost the job table, and what a transaction pooler adds: the figures
docs/scaling.md sizes a cluster's database load from, measured side by side in one run.

1. A heartbeat, and a save of a 20-key state, each against a booking + finishing cycle
   on the same table of START jobs (reported for comparison: no target).
2. A booking + finishing cycle through a private PgBouncer in transaction mode
   (`DBDICT_POOLER=transaction`: no prepared statements) against one straight to
   Postgres, on the same table (target: <= 1.5x).

Usage: python -m benchmarks --only writes [--scale 1.0] [--db URL] records the figures in
benchmarks/results.json, beside the other suites'; python -m benchmarks.write_bench prints
them only. Needs pgbouncer (`make prerequisites` installs it).
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

from sqlalchemy import make_url

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
from benchmarks.store_bench import book_and_finish
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from tests.services import pgbouncer

CYCLES = 150
ROUNDS = 5
STATE = {f"metric_{i}": i * 0.1 for i in range(20)}  # a save's state: a few metrics and a step


@contextlib.contextmanager
def _pooled() -> Iterator[None]:
    """Stores opened inside connect as they do behind a transaction pooler."""
    os.environ["DBDICT_POOLER"] = "transaction"
    try:
        yield
    finally:
        del os.environ["DBDICT_POOLER"]


def _per_write(store: JobStore, write: Callable[[Job], object], count: int) -> float:
    """Seconds per `write` of one RUNNING job of the store's (booked first, finished after)."""
    job = store.book()
    assert job is not None, "the table ran out of START jobs"
    started = time.perf_counter()
    for _ in range(count):
        write(job)
    elapsed = time.perf_counter() - started
    store.finish(job, Status.DONE)
    return elapsed / count


def measure(settings: Settings) -> list[Result]:
    cycles = settings.size(CYCLES, least=20)
    straight = filled(settings.db, "bench_writes", 4 * ROUNDS * cycles, start=4 * ROUNDS * cycles)
    try:
        beat, save, cycle = alternate(
            lambda: _per_write(straight, straight.heartbeat, cycles),
            lambda: _per_write(straight, lambda job: straight.save(job, STATE), cycles),
            lambda: book_and_finish(straight, cycles),
            rounds=ROUNDS,
        )
        with pgbouncer(settings.db, pool_size=2, idle_transaction=60) as bouncer, _pooled():
            database = make_url(settings.db).database or ""
            pooled = JobStore.open(f"{bouncer.url(database)}/{straight.path.table}")
            through, direct = alternate(
                lambda: book_and_finish(pooled, cycles),
                lambda: book_and_finish(straight, cycles),
                rounds=ROUNDS,
            )
            pooled.engine.dispose()
    finally:
        drop(straight)
    return [
        ratio("heartbeat / book + finish (time)", beat, cycle, None,
              f"{beat * 1e3:.2f} vs {cycle * 1e3:.2f} ms", heartbeat_s=beat, cycle_s=cycle),
        ratio(f"save of a {len(STATE)}-key state / book + finish (time)", save, cycle, None,
              f"{save * 1e3:.2f} vs {cycle * 1e3:.2f} ms", save_s=save, cycle_s=cycle),
        ratio("PgBouncer, transaction mode: book + finish through it / straight (time)", through,
              direct, ("<=", 1.5), f"{through * 1e3:.2f} vs {direct * 1e3:.2f} ms per job",
              pooled_s=through, straight_s=direct),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
