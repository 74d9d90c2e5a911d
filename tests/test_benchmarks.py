"""`make bench` runs every benchmark and records each measure next to its target in
benchmarks/results.json; the docs quote no figure but the ones recorded there.

The figures themselves are not checked (a benchmark is not a test: this machine is
shared and noisy); that every suite runs, on real services, and records well is. And
the docs are checked against the record: every figure benchmarks/README.md and
docs/scaling.md give (a number with a unit of measure: ms, x, jobs/s, MiB...) is a
recorded one, or the arithmetic the docs show on recorded ones, or named below as not
a measure (a workload's size, a setting). After a new run, this test lists each figure
that no longer agrees, written as the docs should now write it.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import Result
from tests.conftest import REPO

SUITES = {
    "worker", "schedule", "store", "status", "save", "stop", "memory", "capture", "isolation",
    "writes", "curves", "optimize", "dashboard",
}  # fmt: skip
RECORD = REPO / "benchmarks" / "results.json"
README = "benchmarks/README.md"
SCALING = "docs/scaling.md"
WORKERS = 800  # docs/scaling.md's cluster: 100 nodes x 8 worker processes

# A number with a unit of measure: what a doc may only write if a benchmark recorded it.
FIGURE = re.compile(
    r"(?<![\w.,])\d[\d,]*(?:\.\d+)?(?:x\b|\s?(?:ms/s|ms|s|%|MiB|MB|KB|GB|jobs/s|rows/s|/s)(?![\w/]))"
)

# Where each doc quotes recorded figures, as it writes them (see _figures for the names;
# whitespace is compared collapsed, so a quote may wrap).
QUOTES = {
    README: [
        "make bench # all of them, about {minutes:.0f} minutes on 2 cores",
        "**dbdict at {pg_vs_raw:.2f}x the raw minimum** (target {pg_vs_raw_target})",
        "**{pg_vs_procrastinate:.2f}x Procrastinate** (target {pg_vs_procrastinate_target})",
        "even raw Celery's minimum ({pg_raw:,.0f} jobs/s) is below it "
        "({pg_procrastinate:,.0f} jobs/s)",
        "Celery's own per-task cost (plain no-op: {pg_plain:,.0f} jobs/s)",
        "**Bulk insert at {insert_vs_copy:.2f}x a raw COPY** (target {insert_vs_copy_target},",
        "**The embedded default at {embedded_vs_raw:.2f}x the raw minimum** (target "
        "{embedded_vs_raw_target})",
        "**Scheduling at {schedule_small_vs_delay:.2f}x and {schedule_vs_delay:.2f}x a `delay()` "
        "loop** (5,000 and 100,000 jobs; target {schedule_vs_delay_target})",
        "**A save with curves at {curves_save:.2f}x a save alone** (target {curves_save_target}), "
        "and {curves_loop_save:.2f}x with the 100 steps a loop reports between two saves",
        "**The experiment loop at {curves_standard:.2f}x and {curves_worker:.2f}x** (target "
        "{curves_worker_target})",
        "**`dbdict plot --curves` at {curves_plot:.2f}x matplotlib alone** (target "
        "{curves_plot_target})",
        "process start and imports add more ({curves_plot_command:.2f}x)",
    ],
    SCALING: [
        "one booking + finishing cycle took {pooled_ms:.2f} ms through a private PgBouncer in "
        "transaction mode against {straight_ms:.2f} ms straight to Postgres",
        "(`benchmarks/write_bench.py`: {pooled_vs_straight:.2f}x, target "
        "{pooled_vs_straight_target})",
        "a booking + finishing cycle costs **{cycle_ms:.2f} ms** of one session, a heartbeat "
        "**{heartbeat_ms:.2f} ms** ({heartbeat_vs_cycle:.2f}x of a cycle), a save of a 20-key "
        "state **{save_ms:.2f} ms** ({save_vs_cycle:.2f}x)",
        "A cycle costs the same at 1,000 and at 1,000,000 rows (`store_bench`: "
        "{book_large_vs_small:.2f}x)",
        "| bookings + finishes | 800 / 60 = 13.3 jobs/s, x {cycle_ms:.2f} ms = {books_1min:.0f} "
        "ms/s | 800 / 3,600 = 0.22 jobs/s, x {cycle_ms:.2f} ms = {books_1h:.1f} ms/s |",
        "| heartbeats | 800 / 30 = 26.7/s, x {heartbeat_ms:.2f} ms = {beats:.0f} ms/s "
        "| the same: {beats:.0f} ms/s |",
        "| saves | 800 / 60 = 13.3/s, x {save_ms:.2f} ms = {saves:.0f} ms/s "
        "| the same: {saves:.0f} ms/s |",
        "| database time | {session_1min:.2f} s per second | {session_1h:.2f} s per second |",
        "one worker running 1-minute jobs costs {cycle_ms:.2f} / 60 + {heartbeat_ms:.2f} / 30 + "
        "{save_ms:.2f} / 60 = {per_worker_ms:.3f} ms of session time per second, so one fully "
        "busy session carries about 1,000 / {per_worker_ms:.3f} = {workers_per_session:,.0f} "
        "such workers",
        "(through PgBouncer, {pooled_vs_straight:.2f}x the time per cycle)",
        "the 800 workers would book 800 jobs/s, 800 x {cycle_ms:.2f} ms = {session_1s:.1f} s of "
        "session time per second, so at least {busy_sessions_1s:.0f} busy sessions",
        "the measured worker throughput on this machine was {pg_dbdict:.0f} no-op jobs/s for 2 "
        "processes (`worker_bench`)",
        "A save of a big state costs more than {save_ms:.2f} ms",
        "`dbdict status` took {status_large_ms:.0f} ms against {status_small_ms:.0f} ms at "
        "1,000 (`status_bench`)",
        "Scheduling inserts and sends {schedule_rate:,.0f} jobs/s (`schedule_bench`, 100,000 "
        "jobs), so even a 100,000-job sweep is queued in about {schedule_s:.0f} s",
        "`dbdict schedule` measured {schedule_rate:,.0f} messages/s",
        "took {save_ssh_ms:.0f} ms over ssh to loopback against {save_local_ms:.2f} ms to a "
        "local exproot (`save_bench`)",
        "at 1-second jobs on 800 workers, at least {busy_sessions_1s:.0f} busy sessions",
    ],
}

# Numbers with a unit that are not measures, as each doc writes them, and why.
NOT_FIGURES = {
    README: {
        "1 GB": "the save benchmark's workload",
        "100 ms": "how often the stop benchmark's experiment switches",
    },
    SCALING: {
        "20 s": "how long the cluster test cuts a host's link",
        "1 KB": "a message's bound: the JSON of a table name and a job id",
        "1 GB": "the save benchmark's workload",
        "16 MB": "DBDICT_MAX_STATE_MB's default",
        "13.3 messages/s": "800 workers / 60 s jobs: arithmetic on the example, no measure",
        "0.22/s": "800 workers / 3,600 s jobs: arithmetic on the example, no measure",
    },
}


def _recorded() -> tuple[dict[str, Any], list[Result]]:
    """benchmarks/results.json as written, and its results."""
    record: dict[str, Any] = json.loads(RECORD.read_text(encoding="utf-8"))
    return record, [Result.from_json(result) for result in record["results"]]


def _result(results: list[Result], *words: str) -> Result:
    """The one result whose name holds every word (a measure renamed fails here, by name)."""
    (found,) = [result for result in results if all(word in result.name for word in words)]
    return found


def _figures(record: dict[str, Any], results: list[Result]) -> dict[str, Any]:
    """Every figure the docs quote, by name: recorded, or worked out from recorded ones as
    the docs work it out."""
    named = {
        "pg_vs_raw": _result(results, "Postgres + Redis", "raw minimum"),
        "pg_vs_procrastinate": _result(results, "Postgres + Redis", "Procrastinate"),
        "embedded_vs_raw": _result(results, "embedded default", "raw minimum"),
        "schedule_small_vs_delay": _result(results, "5,000 jobs", "delay() loop"),
        "schedule_vs_delay": _result(results, "100,000 jobs", "delay() loop"),
        "book_large_vs_small": _result(results, "book + finish", "START rows"),
        "insert_vs_copy": _result(results, "raw COPY"),
        "status_large_vs_small": _result(results, "`dbdict status`"),
        "save_local": _result(results, "save, local exproot"),
        "save_ssh": _result(results, "save, ssh exproot"),
        "heartbeat_vs_cycle": _result(results, "heartbeat / book + finish"),
        "save_vs_cycle": _result(results, "-key state / book + finish"),
        "pooled_vs_straight": _result(results, "PgBouncer"),
        "curves_save": _result(results, "with 3 values reported / without"),
        "curves_loop_save": _result(results, "(a loop's save) / without"),
        "curves_standard": _result(results, "experiment loop, StandardChannel"),
        "curves_worker": _result(results, "experiment loop, a booked job"),
        "curves_plot": _result(results, "`dbdict plot --curves loss` in-process"),
        "curves_plot_command": _result(results, "`dbdict plot --curves loss` as a command"),
    }
    figures: dict[str, Any] = {name: result.value for name, result in named.items()}
    figures |= {f"{name}_target": result.shown_target for name, result in named.items()}
    worker = named["pg_vs_raw"].figures
    schedule_s = named["schedule_vs_delay"].figures["schedule_s"]
    status = named["status_large_vs_small"].figures
    pooled = named["pooled_vs_straight"].figures
    cycle = named["heartbeat_vs_cycle"].figures["cycle_s"] * 1e3
    beat = named["heartbeat_vs_cycle"].figures["heartbeat_s"] * 1e3
    save = named["save_vs_cycle"].figures["save_s"] * 1e3
    per_worker = cycle / 60 + beat / 30 + save / 60  # 1-minute jobs, saved once, beating each 30 s
    hourly = WORKERS / 3600 * cycle + WORKERS / 30 * beat + WORKERS / 60 * save
    return figures | {
        "minutes": sum(run["seconds"] for run in record["runs"].values()) / 60,
        "pg_dbdict": worker["dbdict"],
        "pg_raw": worker["raw_minimum"],
        "pg_plain": worker["plain_celery"],
        "pg_procrastinate": worker["procrastinate"],
        "schedule_s": schedule_s,
        "schedule_rate": 100_000 / schedule_s,
        "status_large_ms": status["large_s"] * 1e3,
        "status_small_ms": status["small_s"] * 1e3,
        "save_local_ms": named["save_local"].figures["save_s"] * 1e3,
        "save_ssh_ms": named["save_ssh"].figures["save_s"] * 1e3,
        "pooled_ms": pooled["pooled_s"] * 1e3,
        "straight_ms": pooled["straight_s"] * 1e3,
        "cycle_ms": cycle,
        "heartbeat_ms": beat,
        "save_ms": save,
        "books_1min": WORKERS / 60 * cycle,
        "books_1h": WORKERS / 3600 * cycle,
        "beats": WORKERS / 30 * beat,
        "saves": WORKERS / 60 * save,
        "session_1min": WORKERS * per_worker / 1e3,
        "session_1h": hourly / 1e3,
        "per_worker_ms": per_worker,
        "workers_per_session": round(1e3 / round(per_worker, 3), -2),  # as the docs divide
        "session_1s": WORKERS * cycle / 1e3,
        "busy_sessions_1s": math.ceil(WORKERS * cycle / 1e3),
    }


def _row(result: Result) -> str:
    """A result's row in benchmarks/README.md's table of figures."""
    target = (result.shown_target or "none") + (": missed" if result.met is False else "")
    return f"| {result.name} | {result.shown} | {result.detail} | {target} |"


def _collapsed(text: str) -> str:
    return " ".join(text.split())


def _quoted(doc: str) -> list[str]:
    """What `doc` must say, as the record has it now."""
    record, results = _recorded()
    figures = _figures(record, results)
    quotes = [_collapsed(quote).format(**figures) for quote in QUOTES[doc]]
    return quotes + ([_row(result) for result in results] if doc == README else [])


@pytest.mark.parametrize("doc", [README, SCALING])
def test_every_figure_the_docs_quote_is_the_one_recorded(doc: str) -> None:
    text = _collapsed((REPO / doc).read_text(encoding="utf-8"))
    stale = [quote for quote in _quoted(doc) if quote not in text]
    assert not stale, f"{doc} should say, as benchmarks/results.json has it:\n" + "\n".join(stale)


@pytest.mark.parametrize("doc", [README, SCALING])
def test_the_docs_give_no_figure_that_was_not_recorded(doc: str) -> None:
    text = _collapsed((REPO / doc).read_text(encoding="utf-8"))
    quoted = [
        range(found.start(), found.end())
        for quote in _quoted(doc)
        for found in re.finditer(re.escape(quote), text)
    ]
    unrecorded = [
        figure.group()
        for figure in FIGURE.finditer(text)
        if figure.group() not in NOT_FIGURES[doc]
        and not any(figure.start() in span for span in quoted)
    ]
    assert not unrecorded, f"figures of {doc} that benchmarks/results.json does not hold: " + (
        ", ".join(unrecorded)
    )


def test_every_suite_is_in_the_record() -> None:
    record, _ = _recorded()
    assert set(record["runs"]) == SUITES
    assert {result["suite"] for result in record["results"]} == SUITES
    assert all(run["settings"]["scale"] == 1.0 for run in record["runs"].values()), (
        "the docs quote full-size runs"
    )


@pytest.mark.integration
@pytest.mark.timeout(1500)  # eleven suites in subprocesses: minutes on a loaded machine
def test_the_benchmarks_at_a_tiny_scale_record_every_measure_with_its_target(
    postgres_url: str, redis_url: str, tmp_path: Path
) -> None:
    """Two runs into one file, as `--only` runs are: the second adds its suite to the first's."""
    output = tmp_path / "results.json"
    broker = redis_url.rsplit("/", 1)[0] + "/15"  # a database of the private Redis no test uses
    for suites in (sorted(SUITES - {"writes"}), ["writes"]):
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks", "--scale", "0.01", "--db", postgres_url,
             "--broker", broker, "--output", str(output), "--only", ",".join(suites)],
            cwd=REPO, capture_output=True, text=True, timeout=1200, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert "target" in done.stdout, "the table is printed"
    record = json.loads(output.read_text())
    assert set(record["runs"]) == SUITES
    assert all(run["settings"]["scale"] == 0.01 for run in record["runs"].values())
    results = record["results"]
    assert {result["suite"] for result in results} == SUITES
    assert len(results) >= 2 * len(SUITES) - 2, [result["name"] for result in results]
    for result in results:
        assert math.isfinite(result["value"]), result
        if result["target"] is None:
            assert result["met"] is None
        else:
            operator, bound = result["target"]
            assert operator in (">=", "<=", "<")
            assert bound > 0
            assert result["met"] in (True, False)
    targets = {result["name"].split(",")[0] for result in results if result["target"]}
    assert {
        "worker",
        "save",
        "stop latency",
        "worker pool memory growth",
        "capture",
        "isolation",
        "PgBouncer",
        "experiment loop",
    } <= targets
