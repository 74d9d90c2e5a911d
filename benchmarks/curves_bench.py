"""What learning curves cost: `channel.report` at every step, the points written with the
next save, and reading them back; each side by side with the same work without curves.

1. A save of a 20-key state (write_bench's) with 3 values reported since the last one,
   against the same save alone, on one booked job on Postgres (target: <= 1.2x). The
   points ride in the save's own statement (`JobStore.save(job, state, reports=...)`).
   And, for comparison, a save of what the loop below reports between two saves: 100
   steps of 3 values.
2. An experiment loop of 10,000 steps saving every 100, reporting 3 values at every step,
   against the same loop reporting nothing (target: < 1.05x, "slows it by less than 5%"),
   run two ways: by a `StandardChannel` (a working directory on local disk: each save
   appends the points to `metrics.jsonl` and rewrites `current.conf`), and as a worker
   runs a booked job (`dbrunner.run_booked`, the default isolation: the experiment in a
   supervised process of its own, each save written to the row with its points, then to
   `metrics.jsonl` and `current.conf`, mirrored to a local exproot).
   Each step does the same fixed work, a stand-in for a training step: the tanh of the
   product of two arrays of 524,288 numbers and the mean of its square (numpy, one
   thread; about 1 ms a step on the 2-core machine of the record, which gives the time of
   a step measured). The ratio depends on it: what the curves cost is fixed per step and
   per save, so a step of more work hides it more, and a step of less shows it more.
3. `dbdict plot --curves loss` of 1,000 jobs of 1,000 steps (1,000,000 points read from the
   metric table) against matplotlib alone drawing the same lines from Python lists (one
   LineCollection, a PNG of the same size and dpi) (target: < 1.5x): the command run in
   this process, and, for comparison, as a user runs it (its process start included).
4. `dbdict metrics JOB` of one job's 1,000-step curve from a metric table of 10,000,000
   rows against one of 10,000 (target: <= 1.2x), and `store.metrics` of it alone, in this
   process (target: <= 1.2x), with how Postgres's plan reads the large table (an index,
   not a sequential scan).

The metric tables hold their rows in the order a sweep's saves write them (100 steps of
one job, then of the next), with their indexes grown by those inserts.

Usage: python -m benchmarks --only curves [--scale 1.0] [--db URL] records the figures in
benchmarks/results.json, beside the other suites'; python -m benchmarks.curves_bench prints
them only. The metric tables are filled with one INSERT ... SELECT from generate_series
(benchmark setup, not measured), vacuumed, and dropped at the end with their job tables.
Needs matplotlib (the `plot` extra).
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from click.testing import CliRunner
from matplotlib import image
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from sqlalchemy import text

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
from benchmarks.write_bench import STATE
from dbdict_celery.cli.plotting import plot_command
from dbdict_celery.experiment.channel import Channel, StandardChannel
from dbdict_celery.experiment.params import DD
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job, NewJob
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.dbrunner import book, run_booked
from dbdict_celery.worker.supervisor import close_experiment_process

SAVES = 200  # saves per side and round
SAVE_ROUNDS = 7
STEPS = 10_000  # steps of an experiment loop
SAVE_EVERY = 100
LOOP_ROUNDS = 5
WIDTH = 1 << 19  # elements a step works on: about 1 ms of numpy arithmetic here
CURVE = 1_000  # steps of each job's curve in the metric tables
SMALL = 10_000  # rows of the small metric table
LARGE = 10_000_000  # rows of the large one
READ_ROUNDS = 7
PLOT_JOBS = 1_000  # jobs of CURVE steps each drawn by `dbdict plot --curves`
PLOT_ROUNDS = 5
DPI = 150  # as `dbdict plot` writes a PNG
EXPERIMENT = f"{__spec__.name if __spec__ else __name__}.training"  # resolvable as __main__
# Rows in the order a sweep's saves write them: SAVE_EVERY steps of one job, then of the next.
FILL = """
INSERT INTO {metrics} (job_id, key, step, value, run_id)
SELECT job.id, 'loss', step, 1.0 / step + job.id * 1e-6, 'bench'
FROM {jobs} AS job CROSS JOIN generate_series(1, :steps) AS step
ORDER BY (step - 1) / :save_every, job.id, step
"""


def training(state: DD, channel: Channel) -> Any:
    """The experiment of the loops: `state.steps` steps of the same fixed work, a save every
    `state.save_every`, and, if `state.report`, 3 values reported at each step."""
    rng = np.random.default_rng(0)
    inputs, weights = rng.standard_normal(WIDTH), rng.standard_normal(WIDTH)
    for step in range(1, state.steps + 1):
        hidden = np.tanh(inputs * weights)
        loss = float(np.mean(hidden * hidden))
        if state.report:
            channel.report(step, loss=loss, accuracy=1 - loss, lr=1e-3)
        if step % state.save_every == 0:
            state.update(step=step, loss=loss)
            if channel.save_and_switch() == "stop":
                return channel.INCOMPLETE
    return channel.COMPLETE


# -- 1. a save ---------------------------------------------------------------------------


def _reports(steps: Iterator[int], count: int) -> Reports:
    """What an experiment reporting 3 values at each of `count` steps has to save."""
    reports = Reports()
    for step in itertools.islice(steps, count):
        reports.add(step, {"loss": 0.31, "accuracy": 0.69, "lr": 1e-3})
    return reports


def _per_save(store: JobStore, job: Job, reported: int, count: int, steps: Iterator[int]) -> float:
    """Seconds per save of STATE by the RUNNING `job`, with the 3 values of `reported` steps
    since the last save (0: none)."""
    batches = [_reports(steps, reported) for _ in range(count)]
    started = time.perf_counter()
    for reports in batches:
        store.save(job, STATE, reports=reports)
    return (time.perf_counter() - started) / count


def _saves(settings: Settings) -> list[Result]:
    count = settings.size(SAVES, least=10)
    store = filled(settings.db, "bench_curves", 1, start=1)
    try:
        job = store.book()
        assert job is not None
        steps = iter(range(1, 1 << 62))
        one, loop, alone = alternate(
            lambda: _per_save(store, job, 1, count, steps),
            lambda: _per_save(store, job, SAVE_EVERY, count, steps),
            lambda: _per_save(store, job, 0, count, steps),
            rounds=SAVE_ROUNDS,
        )
        store.finish(job, Status.DONE)
    finally:
        drop(store)
    state = f"save of a {len(STATE)}-key state"
    return [
        ratio(f"{state} with 3 values reported / without (time)", one, alone, ("<=", 1.2),
              f"{one * 1e3:.2f} vs {alone * 1e3:.2f} ms", reported_s=one, alone_s=alone),
        ratio(f"{state} with {SAVE_EVERY} steps of 3 values reported (a loop's save) / without "
              "(time)", loop, alone, None, f"{loop * 1e3:.2f} vs {alone * 1e3:.2f} ms",
              reported_s=loop, alone_s=alone),
    ]  # fmt: skip


# -- 2. an experiment loop ---------------------------------------------------------------


def _params(steps: int, reported: bool) -> dict[str, Any]:
    return {"steps": steps, "save_every": SAVE_EVERY, "report": reported}


def _standard_loop(home: Path, steps: int, reported: bool) -> float:
    """Seconds of one run of the loop by a StandardChannel in a new working directory."""
    workdir = Path(tempfile.mkdtemp(dir=home))
    channel = StandardChannel(str(workdir), training, DD(_params(steps, reported)))
    started = time.perf_counter()
    channel.run()
    elapsed = time.perf_counter() - started
    shutil.rmtree(workdir)
    return elapsed


def _worker_loop(store: JobStore, exproot: str, steps: int, reported: bool) -> float:
    """Seconds of one run of the loop as a worker runs a booked job: its experiment in the
    supervised process of this one, its saves written to the row and to its files."""
    params = {**_params(steps, reported), "run": time.time_ns()}  # a new job each time
    (inserted,) = next(store.insert([NewJob(EXPERIMENT, params)]))
    started = time.perf_counter()
    booking = book(store, inserted.id, exproot=exproot)
    assert booking is not None
    outcome = run_booked(store, booking)
    elapsed = time.perf_counter() - started
    assert outcome.status is Status.DONE, outcome
    return elapsed


def _loops(settings: Settings) -> list[Result]:
    steps = settings.size(STEPS, least=2 * SAVE_EVERY)
    with tempfile.TemporaryDirectory(prefix="dbdict-bench-curves-") as folder:
        home = Path(folder)
        store = JobStore.open(f"{settings.db}/bench_curves_{uuid.uuid4().hex[:8]}")
        exproot = str(home / "exproot")
        try:
            sides: list[Callable[[], float]] = [
                lambda: _standard_loop(home, steps, True),
                lambda: _standard_loop(home, steps, False),
                lambda: _worker_loop(store, exproot, steps, True),
                lambda: _worker_loop(store, exproot, steps, False),
            ]
            _standard_loop(home, 2 * SAVE_EVERY, True)  # warm: imports, the experiment
            _worker_loop(store, exproot, 2 * SAVE_EVERY, True)  # process, the captures
            standard, standard_alone, worker, worker_alone = alternate(*sides, rounds=LOOP_ROUNDS)
        finally:
            close_experiment_process()
            drop(store)
    loop = f"{steps:,} steps, a save every {SAVE_EVERY}"
    return [
        ratio(f"experiment loop, StandardChannel, {loop}: 3 values reported a step / none "
              "(time)", standard, standard_alone, ("<", 1.05),
              f"{standard:.2f} vs {standard_alone:.2f} s, "
              f"{standard_alone / steps * 1e3:.2f} ms a step without",
              reported_s=standard, alone_s=standard_alone),
        ratio(f"experiment loop, a booked job as a worker runs it, {loop}: 3 values reported "
              "a step / none (time)", worker, worker_alone, ("<", 1.05),
              f"{worker:.2f} vs {worker_alone:.2f} s, {worker_alone / steps * 1e3:.2f} ms a step "
              "without", reported_s=worker, alone_s=worker_alone),
    ]  # fmt: skip


# -- 3. and 4. curves read back: drawn, and one job's ---------------------------------------


def with_curves(db: str, jobs: int, steps: int) -> JobStore:
    """A new job table of `jobs` DONE jobs, each with a `loss` curve of `steps` points in
    its metric table (filled in one statement, then vacuumed)."""
    store = filled(db, "bench_curves", jobs, start=0)
    metrics = store.metric_table.name
    with store.engine.begin() as connection:
        statement = text(FILL.format(metrics=metrics, jobs=store.path.table))  # validated names
        connection.execute(statement, {"steps": steps, "save_every": SAVE_EVERY})
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").execute(
            text(f"VACUUM ANALYZE {metrics}")
        )
    return store


def plan(store: JobStore, job_id: int) -> str:
    """How Postgres's plan reads the metric table for the query `store.metrics` runs for one
    job's loss curve: "Bitmap Heap Scan on Bitmap Index Scan using metric_pkey", say."""
    query = store._points([job_id], ["loss"])
    compiled = query.compile(store.engine, compile_kwargs={"literal_binds": True})
    with store.engine.connect() as connection:
        (tree,) = connection.execute(text(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar_one()
    nodes = [tree["Plan"]]
    while nodes:
        node = nodes.pop()
        if node.get("Relation Name") == store.metric_table.name:
            return _scan(node, f"{store.path.table}_")
        nodes += node.get("Plans", [])
    raise AssertionError(f"the plan reads no {store.metric_table.name}: {tree}")


def _scan(node: dict[str, Any], prefix: str) -> str:
    """A plan's node and the nodes it reads from, with the indexes they use (their names
    without the job table's)."""
    index = node.get("Index Name", "").removeprefix(prefix)
    shown = f"{node['Node Type']} using {index}" if index else node["Node Type"]
    return " on ".join([shown, *(_scan(child, prefix) for child in node.get("Plans", []))])


def _lists(store: JobStore) -> list[tuple[list[int], list[float]]]:
    """Each job's loss curve as two Python lists, steps and values."""
    curves: dict[int, tuple[list[int], list[float]]] = {}
    for point in store.stream_metrics(keys=["loss"]):
        steps, values = curves.setdefault(point.job_id, ([], []))
        steps.append(point.step)
        values.append(point.value)
    return list(curves.values())


def _matplotlib_seconds(
    curves: list[tuple[list[int], list[float]]], size: tuple[float, float], output: Path
) -> float:
    """Seconds matplotlib alone takes to draw `curves`, one LineCollection, into a PNG."""
    started = time.perf_counter()
    figure = Figure(figsize=size)
    axes = figure.subplots()
    axes.add_collection(LineCollection([np.column_stack(curve) for curve in curves]))
    axes.autoscale_view()
    figure.savefig(output, dpi=DPI)
    return time.perf_counter() - started


def _plot_seconds(location: str, output: Path) -> float:
    """Seconds `dbdict plot --curves loss` takes in this process (no process start)."""
    started = time.perf_counter()
    arguments = ["--db", location, "--curves", "loss", "-o", str(output)]
    done = CliRunner().invoke(plot_command, arguments)
    elapsed = time.perf_counter() - started
    assert done.exit_code == 0, done.output
    return elapsed


def _plot_command_seconds(location: str, output: Path) -> float:
    """Seconds `dbdict plot --curves loss` takes as a user runs it, process start included."""
    started = time.perf_counter()
    command = [DBDICT, "plot", "--db", location, "--curves", "loss", "-o", str(output)]
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


def _plots(settings: Settings) -> list[Result]:
    jobs = settings.size(PLOT_JOBS, least=10)
    store = with_curves(settings.db, jobs, CURVE)
    location = f"{settings.db}/{store.path.table}"
    try:
        with tempfile.TemporaryDirectory(prefix="dbdict-bench-curves-") as folder:
            ours, alone = Path(folder, "ours.png"), Path(folder, "alone.png")
            _plot_seconds(location, ours)  # warm, and the figure's size in pixels
            shape = image.imread(ours).shape[:2]
            size = (shape[1] / DPI, shape[0] / DPI)
            curves = _lists(store)
            _matplotlib_seconds(curves, size, alone)
            assert image.imread(alone).shape[:2] == shape, "two PNGs of the same size"
            plot, command, drawing = alternate(
                lambda: _plot_seconds(location, ours),
                lambda: _plot_command_seconds(location, ours),
                lambda: _matplotlib_seconds(curves, size, alone),
                rounds=PLOT_ROUNDS,
            )
    finally:
        drop(store)
    sized = f"{jobs:,} jobs x {CURVE:,} steps, {shape[1]}x{shape[0]} PNG"
    return [
        ratio(f"`dbdict plot --curves loss` in-process, {sized} / matplotlib alone (time)",
              plot, drawing, ("<", 1.5), f"{plot:.2f} vs {drawing:.2f} s",
              plot_s=plot, matplotlib_s=drawing),
        ratio(f"`dbdict plot --curves loss` as a command, {sized} / matplotlib alone (time)",
              command, drawing, None, f"{command:.2f} vs {drawing:.2f} s (process start "
              "included)", command_s=command, matplotlib_s=drawing),
    ]  # fmt: skip


def _command_seconds(store: JobStore, db: str, job_id: int) -> float:
    """Seconds `dbdict metrics JOB` takes (its table of a row per step), as a user runs it."""
    started = time.perf_counter()
    command = [DBDICT, "metrics", "--db", f"{db}/{store.path.table}", str(job_id)]
    subprocess.run(command, check=True, capture_output=True, env={**os.environ, "COLUMNS": "200"})
    return time.perf_counter() - started


def _query_seconds(store: JobStore, job_id: int) -> float:
    """Seconds `store.metrics` takes to read one job's loss curve, in this process."""
    started = time.perf_counter()
    points = store.metrics(job_id, keys=["loss"])
    elapsed = time.perf_counter() - started
    assert len(points) == CURVE, len(points)
    return elapsed


def _reads(settings: Settings) -> list[Result]:
    large = settings.size(LARGE, least=10 * SMALL)
    stores: list[JobStore] = []
    try:
        for size in (SMALL, large):
            stores.append(with_curves(settings.db, size // CURVE, CURVE))
        small_store, large_store = stores
        small_job, large_job = 1, large // CURVE // 2  # a job in the middle of the large table
        node = plan(large_store, large_job)
        _query_seconds(small_store, small_job), _query_seconds(large_store, large_job)  # warm
        cmd_small, cmd_large = alternate(
            lambda: _command_seconds(small_store, settings.db, small_job),
            lambda: _command_seconds(large_store, settings.db, large_job),
            rounds=READ_ROUNDS,
        )
        q_small, q_large = alternate(
            lambda: _query_seconds(small_store, small_job),
            lambda: _query_seconds(large_store, large_job),
            rounds=READ_ROUNDS * 3,
        )
    finally:
        for store in stores:
            drop(store)
    rows = f"{large:,} vs {SMALL:,} metric rows"
    return [
        ratio(f"`dbdict metrics JOB` of a {CURVE:,}-step curve, {rows} (time)", cmd_large,
              cmd_small, ("<=", 1.2), f"{cmd_large * 1e3:.0f} vs {cmd_small * 1e3:.0f} ms",
              large_s=cmd_large, small_s=cmd_small),
        ratio(f"store.metrics of a {CURVE:,}-step curve alone, {rows} (time)", q_large,
              q_small, ("<=", 1.2),
              f"{q_large * 1e3:.1f} vs {q_small * 1e3:.1f} ms; plan: {node}",
              large_s=q_large, small_s=q_small),
    ]  # fmt: skip


def measure(settings: Settings) -> list[Result]:
    return [*_saves(settings), *_loops(settings), *_plots(settings), *_reads(settings)]


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
