"""What running each experiment in a supervised process of its own costs: no-op jobs with
isolation (the default, `DBDICT_ISOLATION=process`) and without (`inline`: the experiment
runs in the pool process), Postgres + Redis, two worker processes, alternating rounds,
timed worker-side as `worker_bench` times them.

The experiment process is forked once per pool process and reused while jobs leave it
clean; what each job pays is the round trips to it (the job sent, its writes and its
outcome answered by the supervisor).

Target: with isolation, at least 0.9x the throughput without.

Usage: python -m benchmarks.isolation_bench [--scale 1.0] [--db URL] [--broker URL]
The broker's database is flushed before and after each round: give one nothing else uses.
"""

from __future__ import annotations

from benchmarks.common import Result, Settings, report, settings_from_arguments
from benchmarks.worker_bench import setting_ratio


def measure(settings: Settings) -> list[Result]:
    """No-op job throughput with isolation against without, two rounds each."""
    return [
        setting_ratio(settings, "isolation", "process / inline", "DBDICT_ISOLATION", "inline", 0.9)
    ]


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
