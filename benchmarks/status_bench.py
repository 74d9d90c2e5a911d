"""`dbdict status` on a Postgres table of 1,000,000 jobs against one of 1,000, side by side.

Target: the large table answers within 1.5x of the small one's time. Two
measurements, each the median of alternating rounds:

1. the `dbdict status` command, as a user runs it (process start included);
2. the summary query alone (counts per experiment and status from the
   (experiment, status) index, plus the running jobs), in this process.

Usage: python -m benchmarks.status_bench [--db postgresql://root@127.0.0.1/test]
The tables are filled with one INSERT ... SELECT from generate_series (a mix
of statuses: mostly DONE, some START, FAILED and RUNNING), vacuumed, and dropped
at the end.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from benchmarks.common import alternate, drop
from dbdict_celery.store.store import JobStore

DBDICT = str(Path(sys.executable).with_name("dbdict"))
FILL = """
INSERT INTO {table} (status, priority, experiment, params, state, param_hash, attempts, host,
                     pid, started_at, heartbeat_at)
SELECT CASE WHEN i % 1000 = 0 THEN 0 WHEN i % 20000 = 1 THEN 1 WHEN i % 97 = 0 THEN 3 ELSE 2 END,
       1.0, 'bench.experiment_' || (i % 3),
       jsonb_build_object('lr', i * 1e-6, 'seed', i),
       jsonb_build_object('lr', i * 1e-6, 'seed', i, 'result', i % 7),
       md5(i::text) || md5((-i)::text), 1, 'node-' || (i % 40), i, now(), now()
FROM generate_series(1, :rows) AS i
"""


def filled(db: str, rows: int) -> JobStore:
    store = JobStore.open(f"{db}/bench_status_{uuid.uuid4().hex[:8]}")
    with store.engine.begin() as connection:
        connection.execute(text(FILL.format(table=store.path.table)), {"rows": rows})  # validated
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f"VACUUM ANALYZE {store.path.table}")
        )
    return store


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="postgresql://root@127.0.0.1/test")
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=1_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"filling tables of {args.small:,} and {args.large:,} jobs ...", flush=True)
    small, large = filled(args.db, args.small), filled(args.db, args.large)
    try:
        query_seconds(small), query_seconds(large)  # warm the caches, as a live table is
        cmd_small, cmd_large = alternate(
            lambda: command_seconds(small, args.db),
            lambda: command_seconds(large, args.db),
            args.rounds,
        )
        q_small, q_large = alternate(
            lambda: query_seconds(small), lambda: query_seconds(large), args.rounds * 3
        )
    finally:
        drop(small)
        drop(large)
    print("`dbdict status` (median of alternating rounds):")
    print(f"  {args.small:>9,} rows: {cmd_small * 1e3:8.1f} ms")
    print(f"  {args.large:>9,} rows: {cmd_large * 1e3:8.1f} ms")
    print(f"  ratio large/small: {cmd_large / cmd_small:.2f}x (target <= 1.5x)")
    print("the summary query alone:")
    print(f"  {args.small:>9,} rows: {q_small * 1e3:8.1f} ms")
    print(f"  {args.large:>9,} rows: {q_large * 1e3:8.1f} ms")
    print(f"  ratio large/small: {q_large / q_small:.2f}x")


if __name__ == "__main__":
    main()
