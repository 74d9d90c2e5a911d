"""Worker memory over a long run: the pool processes' resident size after 10,000 no-op jobs
against after the first 100 (Postgres + Redis, `celery -A dbdict_celery worker -c 2`).

A worker runs for weeks: what a job leaves behind (cached statements, modules, log
handlers, threads) must not pile up. The size after 100 jobs is the baseline: by then
every import and cache a job needs is made.

Target: growth under 10%.

Usage: python -m benchmarks.memory_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after: give one nothing else uses.
"""

from __future__ import annotations

from benchmarks.common import (
    CELERY,
    Result,
    Settings,
    cluster,
    done_jobs,
    report,
    settings_from_arguments,
    wait_for,
    workers,
)

WARM = 100


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as listing:
        return [int(child) for child in listing.read().split()]


def _resident_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1])


def measure(settings: Settings) -> list[Result]:
    jobs = settings.size(10_000, least=10 * WARM)
    worker = [CELERY, "-A", "dbdict_celery", "worker", "-c", "2", "--without-mingle",
              "--without-gossip", "-l", "WARNING"]  # fmt: skip
    with cluster(settings, "memory") as bench:
        bench.schedule("benchmarks.noop.experiment", f"n=range({jobs})")
        with workers([worker], bench.env) as (main,):
            wait_for(lambda: done_jobs(bench.store), WARM)
            pool = _children(main.pid)
            warm = sum(_resident_kib(pid) for pid in pool)
            wait_for(lambda: done_jobs(bench.store), jobs)
            assert _children(main.pid) == pool, "a pool process was replaced: not one run"
            after = sum(_resident_kib(pid) for pid in pool)
    growth = 100 * (after - warm) / warm
    return [
        Result(f"worker pool memory growth, {jobs:,} jobs vs the first {WARM}", growth, "%",
               ("<", 10.0), f"{after / 1024:.0f} vs {warm / 1024:.0f} MiB (2 pool processes)",
               {"after_kib": float(after), "warm_kib": float(warm)}),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
