"""`dbdict schedule` of a large sweep into Postgres and Redis, against a plain `delay()` loop.

Both sides run in a fresh process each, timed from outside (start-up included,
a second or so against tens), on an emptied broker:

- `dbdict schedule` of N jobs: rows inserted a batch at a time, one message per
  job sent pipelined, the task ids recorded in the rows;
- the loop a user would write without dbdict: `run_job.delay(table, i)` N times,
  messages only, no rows.

Targets: scheduling at least 2x the loop's rate, for 5,000 jobs (where the start-up of
either process weighs most) as for 100,000, and a peak resident memory under 300 MiB for
100,000 jobs (the sweep is streamed, never held whole).

Usage: python -m benchmarks.schedule_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after: give one nothing else uses.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import redis

from benchmarks.common import Result, Settings, drop, ratio, report, settings_from_arguments
from dbdict_celery.store.store import JobStore

PEAK = """
import atexit, resource, sys
atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
"""
SCHEDULE = (
    PEAK
    + """
from dbdict_celery.cli import main
main(["schedule", "tests.experiments.mark", "n=range(%d)", "marks=unused"])
"""
)
DELAY_LOOP = (
    PEAK
    + """
from dbdict_celery.worker.tasks import run_job
for n in range(%d):
    run_job.delay("jobs", n)
"""
)


def _timed(code: str, env: dict[str, str]) -> tuple[float, int]:
    """(seconds, peak resident KiB) of a fresh Python process running `code`."""
    env = {**os.environ, **env, "PYTHONPATH": os.getcwd()}
    started = time.perf_counter()
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(done.stderr)
    return time.perf_counter() - started, int(done.stderr.strip().splitlines()[-1])


def _scheduling(settings: Settings, jobs: int) -> tuple[Result, int]:
    """`dbdict schedule` of `jobs` jobs against the loop, and the schedule's peak KiB."""
    table = f"bench_schedule_{uuid.uuid4().hex[:8]}"
    env = {"DBDICT_DB": f"{settings.db}/{table}", "DBDICT_BROKER": settings.broker}
    flush = redis.Redis.from_url(settings.broker).flushdb
    try:
        flush()
        ours, peak = _timed(SCHEDULE % jobs, env)
        flush()
        loop, _ = _timed(DELAY_LOOP % jobs, env)
    finally:
        flush()
        drop(JobStore.open(f"{settings.db}/{table}"))
    return ratio(f"scheduling {jobs:,} jobs (rows + messages) / a delay() loop (messages)",
                 jobs / ours, jobs / loop, (">=", 2.0),
                 f"{jobs / ours:,.0f} vs {jobs / loop:,.0f} jobs/s",
                 schedule_s=ours, delay_loop_s=loop), peak  # fmt: skip


def measure(settings: Settings) -> list[Result]:
    """A sweep of 5,000 jobs, where start-up weighs most, and one of 100,000."""
    small, _ = _scheduling(settings, settings.size(5_000, least=100))
    jobs = settings.size(100_000, least=1_000)
    large, peak = _scheduling(settings, jobs)
    mib = peak / 1024
    return [
        small,
        large,
        Result(f"peak memory of `dbdict schedule` of {jobs:,} jobs", mib, "MiB", ("<", 300.0),
               f"{mib:.0f} MiB resident at most", {"peak_kib": float(peak)}),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
