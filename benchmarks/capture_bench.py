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

from benchmarks.common import Result, Settings, report, settings_from_arguments
from benchmarks.worker_bench import setting_ratio


def measure(settings: Settings) -> list[Result]:
    """No-op job throughput with capture against without, two rounds each."""
    return [setting_ratio(settings, "capture", "with / without", "DBDICT_CAPTURE", "off", 0.9)]


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
