"""What the benchmarks share: their settings, fair side-by-side timing, the results they
report (each measure next to its target), and dropping their tables."""

from __future__ import annotations

import argparse
import contextlib
import operator
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis
from rich.console import Console
from rich.table import Table as RichTable
from sqlalchemy import text

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore

REPO = Path(__file__).resolve().parent.parent
DBDICT = str(Path(sys.executable).with_name("dbdict"))
CELERY = str(Path(sys.executable).with_name("celery"))
TIMEOUT = 1800  # seconds any one wait of a benchmark may take before it gives up
DB = "postgresql://root@127.0.0.1/test"
BROKER = "redis://127.0.0.1:6379/14"  # flushed by the benchmarks: nothing else may use it
_COMPARE = {">=": operator.ge, "<=": operator.le, "<": operator.lt}
FILL = """
INSERT INTO {table} (status, priority, experiment, params, state, param_hash, attempts, host,
                     pid, started_at, heartbeat_at)
SELECT CASE WHEN i <= :start THEN 0 WHEN i % 20000 = 1 THEN 1 WHEN i % 97 = 0 THEN 3 ELSE 2 END,
       1.0, 'bench.experiment_' || (i % 3),
       jsonb_build_object('lr', i * 1e-6, 'seed', i),
       jsonb_build_object('lr', i * 1e-6, 'seed', i, 'result', i % 7),
       md5(i::text) || md5((-i)::text), 1, 'node-' || (i % 40), i, now(), now()
FROM generate_series(1, :rows) AS i
"""


@dataclass(frozen=True)
class Settings:
    """Where the benchmarks run, and how big: `scale` 1.0 is the size `make bench` runs."""

    db: str = DB
    broker: str = BROKER
    scale: float = 1.0

    def size(self, full: int, least: int = 1) -> int:
        """`full` scaled, never below `least`."""
        return max(least, round(full * self.scale))


@dataclass(frozen=True)
class Result:
    """One measure next to its target, e.g. worker throughput as a ratio `>= 0.8` x."""

    name: str
    value: float
    unit: str  # "x" for a ratio, else "s", "MiB", "%", "jobs/s"
    target: tuple[str, float] | None  # (">=", 0.8); None: reported for comparison only
    detail: str = ""  # the side-by-side figures the value comes from
    figures: dict[str, float] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        op, bound = self.target
        return bool(_COMPARE[op](self.value, bound))

    @property
    def shown(self) -> str:
        """The value as the table and the docs write it: `0.51x`, `95 MiB`."""
        if self.unit == "x":
            return f"{self.value:.2f}x"
        return f"{self.value:,.2f} {self.unit}"

    @property
    def shown_target(self) -> str:
        """The target as the table and the docs write it (`>= 0.8x`), or "" for none."""
        if self.target is None:
            return ""
        operator, bound = self.target
        return f"{operator} {bound:g}" + ("x" if self.unit == "x" else f" {self.unit}")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "target": self.target and list(self.target), "met": self.met}

    @classmethod
    def from_json(cls, recorded: dict[str, Any]) -> Result:
        """A result as `as_json` recorded it."""
        target = recorded["target"] and (recorded["target"][0], recorded["target"][1])
        fields = ("name", "value", "unit", "detail", "figures")
        return cls(target=target, **{name: recorded[name] for name in fields})


def ratio(name: str, ours: float, theirs: float, target: tuple[str, float] | None,
          detail: str, **figures: float) -> Result:  # fmt: skip
    """A Result that is the ratio of two rates (or sizes) measured side by side."""
    return Result(name, ours / theirs, "x", target, detail, figures)


def report(results: list[Result], console: Console | None = None) -> None:
    """Print the results as one table, each value next to its target."""
    table = RichTable(title="dbdict-celery benchmarks")
    for column in ("measure", "value", "target", "met", "measured"):
        table.add_column(column, overflow="fold")
    for result in results:
        met = {None: "", True: "[green]yes", False: "[red]no"}[result.met]
        table.add_row(result.name, result.shown, result.shown_target, met, result.detail)
    (console or Console()).print(table)


def settings_from_arguments(doc: str | None) -> Settings:
    """The Settings a benchmark module's command line asks for (--db, --broker, --scale)."""
    parser = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    parser.add_argument("--db", default=DB, help="a Postgres URL, without table")
    parser.add_argument("--broker", default=BROKER, help="a Redis database nothing else uses")
    parser.add_argument("--scale", type=float, default=1.0, help="0.1: a tenth of the sizes")
    arguments = parser.parse_args()
    return Settings(arguments.db, arguments.broker, arguments.scale)


def alternate(*sides: Callable[[], float], rounds: int) -> list[float]:
    """Medians of `rounds` rounds, each measuring every side in turn: this machine is noisy."""
    measured: list[list[float]] = [[] for _ in sides]
    for _ in range(rounds):
        for side, values in zip(sides, measured, strict=True):
            values.append(side())
    return [statistics.median(values) for values in measured]


def filled(db: str, prefix: str, rows: int, start: int) -> JobStore:
    """A new job table of `rows` jobs made in one statement: the first `start` are START, the
    rest mostly DONE, some FAILED and RUNNING. Vacuumed, as a table that has lived is."""
    store = JobStore.open(f"{db}/{prefix}_{uuid.uuid4().hex[:8]}")
    with store.engine.begin() as connection:
        statement = text(FILL.format(table=store.path.table))  # a validated name
        connection.execute(statement, {"rows": rows, "start": start})
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f"VACUUM ANALYZE {store.path.table}")
        )
    return store


@contextlib.contextmanager
def workers(
    commands: list[list[str]], env: dict[str, str]
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Worker processes started from the repository, stopped (SIGTERM) at the end."""
    env = {**os.environ, **env, "PYTHONPATH": str(REPO)}
    processes = [
        subprocess.Popen(
            command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for command in commands
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=120)


def wait_for(count: Callable[[], int], wanted: int) -> None:
    """Poll `count` until it reaches `wanted`; give up, saying so, after TIMEOUT."""
    deadline = time.monotonic() + TIMEOUT
    while count() < wanted:
        if time.monotonic() > deadline:
            raise SystemExit(f"only {count()} of {wanted} after {TIMEOUT} s")
        time.sleep(0.2)


@dataclass(frozen=True)
class Cluster:
    """A fresh job table on the benchmarks' Postgres, with the environment its commands and
    workers run with (the benchmarks' Redis, emptied; an exproot of its own)."""

    store: JobStore
    env: dict[str, str]

    def schedule(self, *args: str) -> None:
        """`dbdict schedule ARGS` on this table."""
        subprocess.run([DBDICT, "schedule", *args], env=self.env, cwd=REPO, check=True,
                       capture_output=True)  # fmt: skip


@contextlib.contextmanager
def cluster(settings: Settings, name: str) -> Iterator[Cluster]:
    """A Cluster for one benchmark, dropped (table, broker content, files) at the end."""
    home = tempfile.mkdtemp(prefix=f"dbdict-bench-{name}-")
    location = f"{settings.db}/bench_{name}_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DBDICT_DB": location, "DBDICT_BROKER": settings.broker,
           "DBDICT_EXPROOT": f"{home}/exproot", "DBDICT_HOME": home,
           "PYTHONPATH": str(REPO)}  # fmt: skip
    flush = redis.Redis.from_url(settings.broker).flushdb
    flush()
    store = JobStore.open(location)
    try:
        yield Cluster(store, env)
    finally:
        flush()
        drop(store)
        shutil.rmtree(home, ignore_errors=True)


def done_jobs(store: JobStore) -> int:
    """How many jobs of the table are DONE."""
    counts = store.summary(running_limit=0).counts
    return sum(count for (_, status), count in counts.items() if status is Status.DONE)


def drop(store: JobStore) -> None:
    """Remove a benchmark's table, its attempt and metric tables, and its schema and study
    records."""
    with store.engine.begin() as connection:
        for table in (store.path.table, store.attempt_table.name, store.metric_table.name):
            connection.execute(text(f"DROP TABLE IF EXISTS {table}"))
        name = {"name": store.path.table}
        connection.execute(text("DELETE FROM dbdict_schema WHERE table_name = :name"), name)
        connection.execute(text("DELETE FROM dbdict_study WHERE table_name = :name"), name)
