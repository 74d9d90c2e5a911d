"""Worker throughput: no-op jobs through dbdict, side by side with what a user could run instead.

For each deployment, in alternating rounds, N jobs are queued before two worker
processes start, and each side is timed worker-side, from the first start to the
last finish, as its own rows record them:

- dbdict's app running `benchmarks/noop.py`;
- raw Celery (`raw_app.py`, dbdict's settings) doing only the minimum a runner that
  keeps its record in a database needs: one conditional UPDATE to book, one to finish;
- raw Celery with a plain no-op task (the cost of Celery itself);
- on Postgres, Procrastinate (`procrastinate_app.py`), a Postgres task queue, with two
  worker processes.

Targets: at least 0.8x the raw minimum, and at least Procrastinate's rate.

Usage: python -m benchmarks.worker_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after each round: give one nothing else uses.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import redis
from sqlalchemy import create_engine, func, insert, select

from benchmarks.common import (
    CELERY,
    DBDICT,
    REPO,
    Result,
    Settings,
    alternate,
    done_jobs,
    drop,
    ratio,
    report,
    settings_from_arguments,
    wait_for,
    workers,
)
from benchmarks.raw_rows import NOOP_TASK, TASK, raw_table
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import DEFAULT_PRIORITY
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE, broker_priority, create_app

PROCRASTINATE = str(Path(sys.executable).with_name("procrastinate"))
PROCRASTINATE_APP = "benchmarks.procrastinate_app.app"


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


def _celery(app: str) -> list[list[str]]:
    """A worker of two processes started as the README starts one: Celery's defaults."""
    return [[CELERY, "-A", app, "worker", "-c", "2"]]


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
        with workers(_celery("dbdict_celery"), env):
            wait_for(lambda: done_jobs(store), jobs)
        rows = store.jobs(Status.DONE)
        first = min(row.started_at for row in rows if row.started_at)
        last = max(row.finished_at for row in rows if row.finished_at)
        return jobs / (last - first).total_seconds()
    finally:
        drop(store)


def raw_round(env: dict[str, str], database: str, jobs: int, task: str = TASK) -> float:
    """Tasks/s of a raw Celery baseline (`task`: TASK or NOOP_TASK), `jobs` tasks queued
    beforehand."""
    t = raw_table(f"bench_raw_{uuid.uuid4().hex[:8]}")
    engine = create_engine(database)
    t.create(engine)
    with engine.begin() as connection:
        connection.execute(insert(t), [{"id": n, "status": 0} for n in range(jobs)])
    extra = (jobs - 1,) if task == NOOP_TASK else ()
    try:
        with _settings(env):
            app = create_app()
            with app.producer_or_acquire() as producer:
                driver = producer.connection.transport.driver_type
                for n in range(jobs):
                    app.send_task(task, args=(t.name, n, *extra), queue=QUEUE, producer=producer,
                                  priority=broker_priority(DEFAULT_PRIORITY, driver))  # fmt: skip

        def finished() -> int:
            with engine.connect() as connection:
                return int(connection.scalar(select(func.count()).where(t.c.status == 2)) or 0)

        with workers(_celery("benchmarks.raw_app"), {**env, "RAW_DB": database}):
            wait_for(finished, 1 if extra else jobs)  # a no-op marks only its last task
        with engine.connect() as connection:
            first, last = connection.execute(
                select(func.min(t.c.started), func.max(t.c.finished))
            ).one()
        return float(jobs / (last - first))
    finally:
        t.drop(engine)
        engine.dispose()


def procrastinate_round(server: str, jobs: int) -> float:
    """Jobs/s of Procrastinate running `jobs` no-op jobs deferred beforehand, two worker
    processes, in a database of its own (`server`: a Postgres URL of the cluster)."""
    with scratch_database(server) as database:
        env = {"PROCRASTINATE_DB": database, "PROCRASTINATE_APP": PROCRASTINATE_APP}
        subprocess.run([PROCRASTINATE, "schema", "--apply"], env={**os.environ, **env,
                       "PYTHONPATH": str(REPO)}, check=True, capture_output=True)  # fmt: skip
        with psycopg.connect(database, autocommit=True) as connection:
            connection.execute(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args) "
                "SELECT 'default', 'noop', jsonb_build_object('n', i) "
                "FROM generate_series(1, %s) AS i",
                (jobs,),
            )

            def succeeded() -> int:
                events = "SELECT count(*) FROM procrastinate_events WHERE type = 'succeeded'"
                row = connection.execute(events).fetchone()
                return int(row[0]) if row else 0

            worker = [PROCRASTINATE, "worker", "--concurrency", "1"]
            with workers([worker, worker], env):
                wait_for(succeeded, jobs)
            first, last = connection.execute(
                "SELECT min(at) FILTER (WHERE type = 'started'), "
                "max(at) FILTER (WHERE type = 'succeeded') FROM procrastinate_events"
            ).fetchone() or (None, None)
        return float(jobs / (last - first).total_seconds())


@contextlib.contextmanager
def scratch_database(server: str) -> Iterator[str]:
    """A new, empty Postgres database on the server of `server`; its URL. Dropped after."""
    name = f"bench_{uuid.uuid4().hex[:8]}"
    base = server.rsplit("/", 1)[0]
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")  # a name made here, not a user's
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def flushed(flush: Callable[[], object], run: Callable[[], float]) -> Callable[[], float]:
    """`run`, on an emptied broker."""

    def fresh() -> float:
        flush()
        return run()

    return fresh


def setting_ratio(
    settings: Settings, what: str, sides: str, variable: str, value: str, target: float
) -> Result:
    """No-op job throughput on Postgres + Redis as shipped, against the same with
    `variable=value`, two alternating rounds each, named for `what` is measured and the
    `sides` compared; `target`: the least ratio allowed."""
    jobs = settings.size(2000, least=50)
    home = tempfile.mkdtemp(prefix="dbdict-bench-")
    flush = redis.Redis.from_url(settings.broker).flushdb
    cluster = {"DBDICT_BROKER": settings.broker, "DBDICT_HOME": home,
               "DBDICT_EXPROOT": f"{home}/exproot"}  # fmt: skip
    try:
        shipped, changed = alternate(
            flushed(flush, functools.partial(dbdict_round, cluster, settings.db, jobs)),
            flushed(flush, functools.partial(dbdict_round, {**cluster, variable: value},
                                             settings.db, jobs)),
            rounds=2,
        )  # fmt: skip
    finally:
        flush()
        shutil.rmtree(home, ignore_errors=True)
    return ratio(f"{what}, Postgres + Redis, {jobs:,} no-op jobs: {sides}", shipped, changed,
                 (">=", target), f"{shipped:.0f} vs {changed:.0f} jobs/s ({variable}={value})",
                 shipped=shipped, changed=changed)  # fmt: skip


def measure(settings: Settings) -> list[Result]:
    """Worker throughput on Postgres + Redis (two rounds) and on the embedded default (one:
    SQLite's broker is slow enough that one round of 2,000 jobs takes a minute a side)."""
    jobs = settings.size(2000, least=50)
    home = tempfile.mkdtemp(prefix="dbdict-bench-")
    flush = redis.Redis.from_url(settings.broker).flushdb
    cluster = {"DBDICT_BROKER": settings.broker, "DBDICT_HOME": home,
               "DBDICT_EXPROOT": f"{home}/exproot"}  # fmt: skip
    embedded = {"DBDICT_HOME": home}
    raw_postgres = settings.db.replace("postgresql://", "postgresql+psycopg://", 1)
    results: list[Result] = []
    try:
        ours, minimum, plain, procrastinate = alternate(
            flushed(flush, functools.partial(dbdict_round, cluster, settings.db, jobs)),
            flushed(flush, functools.partial(raw_round, cluster, raw_postgres, jobs)),
            flushed(flush, functools.partial(raw_round, cluster, raw_postgres, jobs, NOOP_TASK)),
            functools.partial(procrastinate_round, settings.db, jobs),
            rounds=2,
        )
        figures = {"dbdict": ours, "raw_minimum": minimum, "plain_celery": plain,
                   "procrastinate": procrastinate}  # fmt: skip
        name = f"worker, Postgres + Redis, {jobs:,} no-op jobs: dbdict"
        results += [
            ratio(f"{name} / raw minimum", ours, minimum, (">=", 0.8),
                  f"{ours:.0f} vs {minimum:.0f} jobs/s", **figures),
            ratio(f"{name} / Procrastinate", ours, procrastinate, (">=", 1.0),
                  f"{ours:.0f} vs {procrastinate:.0f} jobs/s", **figures),
            ratio(f"{name} / plain Celery no-op", ours, plain, None,
                  f"{ours:.0f} vs {plain:.0f} jobs/s", **figures),
        ]  # fmt: skip
        ours, minimum, plain = alternate(
            flushed(flush, functools.partial(dbdict_round, embedded, f"sqlite:///{home}/jobs.db",
                                              jobs)),
            flushed(flush, functools.partial(raw_round, embedded, f"sqlite:///{home}/raw.db",
                                              jobs)),
            flushed(flush, functools.partial(raw_round, embedded, f"sqlite:///{home}/raw.db",
                                              jobs, NOOP_TASK)),
            rounds=1,
        )  # fmt: skip
        figures = {"dbdict": ours, "raw_minimum": minimum, "plain_celery": plain}
        name = f"worker, embedded default, {jobs:,} no-op jobs: dbdict"
        results += [
            ratio(f"{name} / raw minimum", ours, minimum, (">=", 0.8),
                  f"{ours:.0f} vs {minimum:.0f} jobs/s", **figures),
            ratio(f"{name} / plain Celery no-op", ours, plain, None,
                  f"{ours:.0f} vs {plain:.0f} jobs/s", **figures),
        ]  # fmt: skip
    finally:
        flush()
        shutil.rmtree(home, ignore_errors=True)
    return results


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
