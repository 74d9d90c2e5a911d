"""Every benchmark in one run (`make bench`): one table of each measure next to its target,
and the same in `benchmarks/results.json` (or `--output`).

Usage: python -m benchmarks [--scale 1.0] [--db URL] [--broker URL] [--output FILE]
       [--only worker,schedule,...]
At scale 1.0 it takes about a quarter of an hour on a 2-core machine. The broker's database
is flushed: give one nothing else uses.

Each suite's results replace that suite's in the output, and the others stay: `--only
writes` records the write figures beside the rest. Each suite keeps when, where and at
what scale it ran, as runs of different suites may be days apart. A suite is recorded as
soon as it ends, so one that fails later loses nothing measured before it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from typing import Any

from rich.console import Console
from sqlalchemy import make_url

from benchmarks import (
    capture_bench,
    curves_bench,
    dashboard_bench,
    isolation_bench,
    memory_bench,
    optimize_bench,
    save_bench,
    schedule_bench,
    status_bench,
    stop_bench,
    store_bench,
    worker_bench,
    write_bench,
)
from benchmarks.common import BROKER, DB, Result, Settings, report

SUITES: dict[str, Callable[[Settings], list[Result]]] = {
    "worker": worker_bench.measure,
    "schedule": schedule_bench.measure,
    "store": store_bench.measure,
    "status": status_bench.measure,
    "save": save_bench.measure,
    "stop": stop_bench.measure,
    "memory": memory_bench.measure,
    "capture": capture_bench.measure,
    "isolation": isolation_bench.measure,
    "writes": write_bench.measure,
    "curves": curves_bench.measure,
    "optimize": optimize_bench.measure,
    "dashboard": dashboard_bench.measure,
}
OUTPUT = Path(__file__).with_name("results.json")


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--db", default=DB, help="a Postgres URL, without table")
    parser.add_argument("--broker", default=BROKER, help="a Redis database nothing else uses")
    parser.add_argument("--scale", type=float, default=1.0, help="0.1: a tenth of the sizes")
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where to write the JSON")
    parser.add_argument("--only", default=",".join(SUITES), help="the suites to run, by name")
    return parser.parse_args()


def _machine() -> dict[str, Any]:
    """What the figures were measured on and with."""
    packages = ("celery", "kombu", "sqlalchemy", "psycopg", "procrastinate", "optuna")
    return {"cpus": os.cpu_count(), "python": platform.python_version(),
            **{package: version(package) for package in packages}}  # fmt: skip


def _recorded(output: Path) -> dict[str, Any]:
    """What the output holds of the suites that still exist; nothing if it is not there."""
    record = json.loads(output.read_text(encoding="utf-8")) if output.exists() else {}
    runs = {name: run for name, run in record.get("runs", {}).items() if name in SUITES}
    results = [result for result in record.get("results", []) if result["suite"] in runs]
    return {"runs": runs, "results": results}


def main() -> None:
    arguments = _arguments()
    chosen = [name.strip() for name in arguments.only.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(SUITES))
    if unknown:
        raise SystemExit(f"unknown suite(s) {', '.join(unknown)}: choose from {', '.join(SUITES)}")
    settings = Settings(arguments.db, arguments.broker, arguments.scale)
    shown = {**asdict(settings), "db": make_url(settings.db).render_as_string(hide_password=True),
             "broker": make_url(settings.broker).render_as_string(hide_password=True)}  # fmt: skip
    console = Console(stderr=True)
    record = _recorded(arguments.output)
    results: list[Result] = []
    for name in chosen:
        console.print(f"[bold]{name}[/bold] ...")
        started = time.perf_counter()
        measured = SUITES[name](settings)
        record["runs"][name] = {
            "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1),
            "machine": _machine(),
            "settings": shown,
        }
        kept = [result for result in record["results"] if result["suite"] != name]
        record["results"] = kept + [{"suite": name, **result.as_json()} for result in measured]
        record["results"].sort(key=lambda result: list(SUITES).index(result["suite"]))
        arguments.output.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        results += measured
    report(results)
    seconds = sum(record["runs"][name]["seconds"] for name in chosen)
    console.print(f"written to {arguments.output} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
