"""Worker throughput: no-op jobs through dbdict, side by side with the raw baseline.

For each deployment (Postgres with Redis; the embedded default), in alternating
rounds: N no-op jobs queued before a `celery worker -c 2` starts, run by dbdict's
app, then N tasks of `benchmarks/raw_app.py` (the same settings, one conditional
UPDATE to book and one to finish). Each is measured worker-side, from the first
start to the last finish, as the rows record them. Prints jobs/s and dbdict's
ratio to the baseline (target: at least 0.8).

Usage: python -m benchmarks.worker_bench [--jobs 1000] [--rounds 2]
       [--db postgresql://root@127.0.0.1/test] [--broker redis://127.0.0.1:6379/14]
The broker's database is flushed before and after each round: give one nothing else uses.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import redis
from sqlalchemy import create_engine, func, insert, select

from benchmarks.common import alternate, drop
from benchmarks.raw_rows import TASK, raw_table
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import DEFAULT_PRIORITY
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE, broker_priority, create_app

REPO = Path(__file__).resolve().parent.parent
CELERY = str(Path(sys.executable).with_name("celery"))
DBDICT = str(Path(sys.executable).with_name("dbdict"))
TIMEOUT = 1800


@contextlib.contextmanager
def _settings(env: dict[str, str]) -> Iterator[None]:
    """This process's DBDICT_* settings for one deployment, restored after."""
    saved = {name: os.environ.pop(name) for name in list(os.environ) if name.startswith("DBDICT_")}
    os.environ.update(env)
    try:
        yield
    finally:
        for name in env:
            os.environ.pop(name, None)
        os.environ.update(saved)


@contextlib.contextmanager
def _worker(app: str, env: dict[str, str]) -> Iterator[None]:
    command = [CELERY, "-A", app, "worker", "-c", "2", "--without-mingle", "--without-gossip",
               "-l", "WARNING"]  # fmt: skip
    worker = subprocess.Popen(command, cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        yield
    finally:
        worker.terminate()
        worker.wait(timeout=120)


def _wait_for(count: Callable[[], int], jobs: int) -> None:
    deadline = time.monotonic() + TIMEOUT
    while count() < jobs:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {count()} of {jobs} jobs ran in {TIMEOUT} s")
        time.sleep(0.2)


def _done(store: JobStore) -> int:
    counts = store.summary(running_limit=0).counts
    return sum(count for (_, status), count in counts.items() if status is Status.DONE)


def dbdict_round(env: dict[str, str], location: str, jobs: int) -> float:
    """Jobs/s of dbdict running `jobs` no-op jobs queued beforehand."""
    table = f"bench_worker_{uuid.uuid4().hex[:8]}"
    env = {**env, "DBDICT_DB": f"{location}/{table}"}
    done = subprocess.run([DBDICT, "schedule", "benchmarks.noop.experiment", f"n=range({jobs})"],
                          cwd=REPO, env={**os.environ, **env, "PYTHONPATH": str(REPO)},
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(done.stderr)
    store = JobStore.open(f"{location}/{table}")
    try:
        with _worker("dbdict_celery", env):
            _wait_for(lambda: _done(store), jobs)
        rows = store.jobs(Status.DONE)
        first = min(row.started_at for row in rows if row.started_at)
        last = max(row.finished_at for row in rows if row.finished_at)
        return jobs / (last - first).total_seconds()
    finally:
        drop(store)


def raw_round(env: dict[str, str], database: str, jobs: int) -> float:
    """Tasks/s of the raw baseline, `jobs` tasks queued beforehand."""
    t = raw_table(f"bench_raw_{uuid.uuid4().hex[:8]}")
    engine = create_engine(database)
    t.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(t), [{"id": n, "status": 0} for n in range(jobs)])
    try:
        with _settings(env):
            app = create_app()
            with app.producer_or_acquire() as producer:
                driver = producer.connection.transport.driver_type
                for n in range(jobs):
                    app.send_task(TASK, args=(t.name, n), queue=QUEUE, producer=producer,
                                  priority=broker_priority(DEFAULT_PRIORITY, driver))  # fmt: skip

        def finished() -> int:
            with engine.connect() as connection:
                return int(connection.scalar(select(func.count()).where(t.c.status == 2)) or 0)

        with _worker("benchmarks.raw_app", {**env, "RAW_DB": database}):
            _wait_for(finished, jobs)
        with engine.connect() as connection:
            first, last = connection.execute(
                select(func.min(t.c.started), func.max(t.c.finished))
            ).one()
        return float(jobs / (last - first))
    finally:
        t.drop(engine)
        engine.dispose()


def _flushed(flush: Callable[[], object], run: Callable[[], float]) -> Callable[[], float]:
    """`run`, on an emptied broker."""

    def fresh() -> float:
        flush()
        return run()

    return fresh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgresql://root@127.0.0.1/test")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="dbdict-bench-")
    flush = redis.Redis.from_url(args.broker).flushdb
    cluster = {"DBDICT_BROKER": args.broker, "DBDICT_HOME": home,
               "DBDICT_EXPROOT": f"{home}/exproot"}  # fmt: skip
    embedded = {"DBDICT_HOME": home}
    raw_postgres = args.db.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        print(
            f"no-op jobs, {args.jobs} queued first, worker -c 2, medians of {args.rounds} rounds:"
        )
        for name, env, location, raw_db in (
            ("Postgres + Redis", cluster, args.db, raw_postgres),
            ("embedded default", embedded, f"sqlite:///{home}/jobs.db", f"sqlite:///{home}/raw.db"),
        ):
            ours, raw = alternate(
                _flushed(flush, functools.partial(dbdict_round, env, location, args.jobs)),
                _flushed(flush, functools.partial(raw_round, env, raw_db, args.jobs)),
                args.rounds,
            )
            print(f"  {name:17} dbdict {ours:7.1f}/s   raw minimum {raw:7.1f}/s   "
                  f"ratio {ours / raw:.2f}x (target >= 0.8x)")  # fmt: skip
    finally:
        flush()
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
