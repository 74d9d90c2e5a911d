"""What recording each run's code and environment costs: no-op jobs with capture on (the
default) and off (`DBDICT_CAPTURE=off`), Postgres + Redis, two worker processes, alternating
rounds, timed worker-side as `worker_bench` times them.

Capture is done once per worker process and cached; what each job still pays is the
attempt's record file among its files, and the code's summary in the run's last write.

Target: with capture, at least 0.9x the throughput without.

Usage: python -m benchmarks.capture_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after each round: give one nothing else uses.
"""

from __future__ import annotations

import functools
import shutil
import tempfile

import redis

from benchmarks.common import Result, Settings, alternate, ratio, report, settings_from_arguments
from benchmarks.worker_bench import dbdict_round, flushed


def measure(settings: Settings) -> list[Result]:
    """No-op job throughput with capture against without, two rounds each."""
    jobs = settings.size(2000, least=50)
    home = tempfile.mkdtemp(prefix="dbdict-bench-")
    flush = redis.Redis.from_url(settings.broker).flushdb
    cluster = {"DBDICT_BROKER": settings.broker, "DBDICT_HOME": home,
               "DBDICT_EXPROOT": f"{home}/exproot"}  # fmt: skip
    try:
        captured, bare = alternate(
            flushed(flush, functools.partial(dbdict_round, cluster, settings.db, jobs)),
            flushed(flush, functools.partial(dbdict_round, {**cluster, "DBDICT_CAPTURE": "off"},
                                             settings.db, jobs)),
            rounds=2,
        )  # fmt: skip
    finally:
        flush()
        shutil.rmtree(home, ignore_errors=True)
    name = f"capture, Postgres + Redis, {jobs:,} no-op jobs: with / without"
    return [
        ratio(name, captured, bare, (">=", 0.9), f"{captured:.0f} vs {bare:.0f} jobs/s",
              captured=captured, bare=bare),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
