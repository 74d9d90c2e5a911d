"""Stop latency: from a stop request to the row showing the run's saved state.

Jobs of `examples/count.py` checkpoint and switch every 100 ms on a worker
(`celery -A dbdict_celery worker -c 1`, Postgres + Redis). Each stop waits for
a running job that has saved at least twice, then:

- `dbdict cancel ID`, timed from the command's launch (its start-up included, as a
  user waits for it) to the row showing CANCELLED with the saved count;
- SIGTERM to the worker (a node going down), timed to the row showing the job back
  to START with its saved count; a new worker is started for the next stop;
- `dbdict cancel ID` of a job that never calls `switch()` (`benchmarks/noop.py`'s
  runaway), timed to the row showing CANCELLED: its supervisor kills it once the
  grace period (`DBDICT_GRACE`, 2 s here) is over.

Targets: p95 under 1 s, over 20 stops of each kind; for the job that never
listens, under the grace period plus 1 s.

Usage: python -m benchmarks.stop_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after: give one nothing else uses.
"""

from __future__ import annotations

import signal
import statistics
import subprocess
import time
from collections.abc import Callable

from benchmarks.common import (
    CELERY,
    DBDICT,
    TIMEOUT,
    Result,
    Settings,
    cluster,
    report,
    settings_from_arguments,
    workers,
)
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore

GRACE = 2  # seconds a job that never listens gets before it is killed
WORKER = [CELERY, "-A", "dbdict_celery", "worker", "-c", "1", "--without-mingle",
          "--without-gossip", "-l", "WARNING"]  # fmt: skip


def _until(condition: Callable[[], Job | None]) -> Job:
    deadline = time.monotonic() + TIMEOUT
    while (found := condition()) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {TIMEOUT} s")
        time.sleep(0.005)
    return found


def _saving(store: JobStore) -> Job | None:
    """A running job that has saved at least twice, if there is one."""
    running = store.jobs(Status.RUNNING)
    return next((job for job in running if int(job.state.get("count", 0)) >= 2), None)


def _landed(store: JobStore, job: Job, status: Status) -> Callable[[], Job | None]:
    def check() -> Job | None:
        row = store.get(job.id)
        saved = int(row.state.get("count", 0)) >= int(job.state["count"])
        return row if row.status is status and saved else None

    return check


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def measure(settings: Settings) -> list[Result]:
    stops = settings.size(20, least=3)
    cancels: list[float] = []
    terms: list[float] = []
    kills: list[float] = []
    with cluster(settings, "stop") as bench:
        bench.schedule("examples.count.experiment", "target=100000", "interval=0.1",
                       f"n=range({2 * stops})")  # fmt: skip
        store = bench.store
        with workers([WORKER], bench.env):
            for _ in range(stops):
                job = _until(lambda: _saving(store))
                started = time.perf_counter()
                subprocess.run([DBDICT, "cancel", str(job.id)], env=bench.env, check=True,
                               capture_output=True)  # fmt: skip
                _until(_landed(store, job, Status.CANCELLED))
                cancels.append(time.perf_counter() - started)
        for _ in range(stops):
            with workers([WORKER], bench.env) as (worker,):
                job = _until(lambda: _saving(store))
                started = time.perf_counter()
                worker.send_signal(signal.SIGTERM)
                _until(_landed(store, job, Status.START))
                terms.append(time.perf_counter() - started)
                worker.wait(timeout=TIMEOUT)
    with cluster(settings, "stop") as bench:
        bench.schedule("benchmarks.noop.runaway", f"n=range({stops})")
        with workers([WORKER], {**bench.env, "DBDICT_GRACE": str(GRACE)}):
            for _ in range(stops):
                job = _until(lambda: _saving(bench.store))
                started = time.perf_counter()
                subprocess.run([DBDICT, "cancel", str(job.id)], env=bench.env, check=True,
                               capture_output=True)  # fmt: skip
                _until(_landed(bench.store, job, Status.CANCELLED))
                kills.append(time.perf_counter() - started)
    return [
        Result(f"stop latency, `dbdict cancel` to CANCELLED with the saved state (p95 of "
               f"{stops})", _p95(cancels), "s", ("<", 1.0),
               f"median {statistics.median(cancels):.2f} s, max {max(cancels):.2f} s",
               {"p95_s": _p95(cancels), "median_s": statistics.median(cancels)}),
        Result(f"stop latency, worker SIGTERM to START with the saved state (p95 of {stops})",
               _p95(terms), "s", ("<", 1.0),
               f"median {statistics.median(terms):.2f} s, max {max(terms):.2f} s",
               {"p95_s": _p95(terms), "median_s": statistics.median(terms)}),
        Result(f"stop latency, `dbdict cancel` of a job that never calls switch() to "
               f"CANCELLED, grace {GRACE} s (p95 of {stops})", _p95(kills), "s",
               ("<", GRACE + 1.0),
               f"median {statistics.median(kills):.2f} s, max {max(kills):.2f} s",
               {"p95_s": _p95(kills), "median_s": statistics.median(kills)}),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
