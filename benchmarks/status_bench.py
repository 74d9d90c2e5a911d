"""`dbdict status` on a Postgres table of 1,000,000 jobs against one of 1,000, side by side.

Target: the large table answers within 1.5x of the small one's time. Two
measurements, each the median of alternating rounds:

1. the `dbdict status` command, as a user runs it (process start included);
2. the summary query alone (counts per experiment and status from the
   (experiment, status) index, plus the running jobs), in this process.

Usage: python -m benchmarks.status_bench [--scale 1.0] [--db URL]
The tables are filled with one INSERT ... SELECT from generate_series (a mix
of statuses: mostly DONE, some START, FAILED and RUNNING), vacuumed, and dropped
at the end.
"""

from __future__ import annotations

import os
import subprocess
import time

from benchmarks.common import (
    DBDICT,
    Result,
    Settings,
    alternate,
    drop,
    filled,
    ratio,
    report,
    settings_from_arguments,
)
from dbdict_celery.store.store import JobStore

SMALL = 1_000
ROUNDS = 7


def command_seconds(store: JobStore, db: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [DBDICT, "status", "--db", f"{db}/{store.path.table}"],
        check=True,
        capture_output=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    return time.perf_counter() - started


def query_seconds(store: JobStore) -> float:
    started = time.perf_counter()
    store.summary()
    return time.perf_counter() - started


def measure(settings: Settings) -> list[Result]:
    large = settings.size(1_000_000, least=10 * SMALL)
    small_store = filled(settings.db, "bench_status", SMALL, start=SMALL // 1000)
    large_store = filled(settings.db, "bench_status", large, start=large // 1000)
    try:
        query_seconds(small_store), query_seconds(large_store)  # warm, as a live table is
        cmd_small, cmd_large = alternate(
            lambda: command_seconds(small_store, settings.db),
            lambda: command_seconds(large_store, settings.db),
            rounds=ROUNDS,
        )
        q_small, q_large = alternate(
            lambda: query_seconds(small_store),
            lambda: query_seconds(large_store),
            rounds=ROUNDS * 3,
        )
    finally:
        drop(small_store)
        drop(large_store)
    rows = f"{large:,} vs {SMALL:,} rows"
    return [
        ratio(f"`dbdict status`, {rows} (time)", cmd_large, cmd_small, ("<=", 1.5),
              f"{cmd_large * 1e3:.0f} vs {cmd_small * 1e3:.0f} ms",
              large_s=cmd_large, small_s=cmd_small),
        ratio(f"status summary query alone, {rows} (time)", q_large, q_small, None,
              f"{q_large * 1e3:.1f} vs {q_small * 1e3:.1f} ms", large_s=q_large, small_s=q_small),
    ]  # fmt: skip


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
