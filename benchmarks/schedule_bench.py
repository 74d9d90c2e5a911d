"""`dbdict schedule` of a large sweep into Postgres and Redis: speed, and memory that stays flat.

Schedules a sweep of N jobs and one of 10 x N, each in a fresh process, and
prints jobs/s and each process's peak memory. The sweep is streamed (rows
inserted and messages sent a batch at a time over one connection), so the
peak should barely grow with the sweep: the ratio is the point.

Usage: python -m benchmarks.schedule_bench [--db postgresql://root@127.0.0.1/test]
       [--broker redis://127.0.0.1:6379/14] [--jobs 10000]
The broker's database is flushed before and after: give one nothing else uses.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid

import redis

from benchmarks.common import drop
from dbdict_celery.store.store import JobStore

SCHEDULE = """
import atexit, resource, sys
from dbdict_celery.cli import main
atexit.register(lambda: print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
main(["schedule", "tests.experiments.mark", "n=range(%d)", "marks=unused"])
"""


def schedule(db: str, broker: str, jobs: int) -> tuple[float, int]:
    """(seconds, peak resident KiB) of one `dbdict schedule` of `jobs` jobs."""
    table = f"bench_schedule_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "DBDICT_DB": f"{db}/{table}", "DBDICT_BROKER": broker,
           "PYTHONPATH": os.getcwd()}  # fmt: skip
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCHEDULE % jobs],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        return time.perf_counter() - started, int(done.stderr.strip().splitlines()[-1])
    finally:
        drop(JobStore.open(f"{db}/{table}"))
        redis.Redis.from_url(broker).flushdb()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgresql://root@127.0.0.1/test")
    parser.add_argument("--broker", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    redis.Redis.from_url(args.broker).flushdb()
    small = schedule(args.db, args.broker, args.jobs)
    large = schedule(args.db, args.broker, 10 * args.jobs)
    print("dbdict schedule, rows in Postgres and one message each in Redis:")
    for jobs, (seconds, peak) in ((args.jobs, small), (10 * args.jobs, large)):
        print(f"  {jobs:>9,} jobs: {seconds:6.1f} s ({jobs / seconds:,.0f} jobs/s), "
              f"peak memory {peak / 1024:.0f} MiB")  # fmt: skip
    print(
        f"  peak memory ratio {10 * args.jobs:,} / {args.jobs:,} jobs: {large[1] / small[1]:.2f}x"
    )


if __name__ == "__main__":
    main()
