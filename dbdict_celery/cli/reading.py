"""Looking at the table: `dbdict status`, `dbdict list` and `dbdict show`."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click
from rich.progress import TimeElapsedColumn

import dbdict_celery as api
from dbdict_celery.cli.options import (
    chosen_statuses,
    column_names,
    db_options,
    json_option,
    stale_after_option,
    status_option,
    where_option,
)
from dbdict_celery.cli.output import (
    DETAIL_LIMIT,
    attempt_record,
    columns_record,
    job_record,
    print_json,
    progress_bar,
    rich_table,
    stderr,
    stdout,
)
from dbdict_celery.config import stale_after as default_stale_after
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import Attempt, RunCounts
from dbdict_celery.store.durations import duration
from dbdict_celery.store.job import Job, default_columns, job_dir, state_key, value_of
from dbdict_celery.store.limits import gpus_needed
from dbdict_celery.worker.attempt_record import RECORDS

if TYPE_CHECKING:
    from dbdict_celery.store.queries import Summary
    from dbdict_celery.store.store import JobStore
    from dbdict_celery.worker.consumers import QueueConsumers


@click.command("status")
@db_options
@stale_after_option("Flag running jobs without a heartbeat for this long")
@click.option("--wait", is_flag=True, help="Wait until no job is START or RUNNING.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="With --wait: give up after this long (exit 1).",
)
@json_option
def status_command(
    db: str | None,
    table: str | None,
    stale_after: float | None,
    wait: bool,
    timeout: float | None,
    as_json: bool,
) -> None:
    """Counts per experiment and status, the running jobs with their heartbeats, and the
    queues of the START jobs with how many workers consume each."""
    store = api.JobStore.open(db, table, create=False)
    stale = stale_after or default_stale_after()
    if wait:
        _wait(store, timeout)
    summary = store.summary()
    consumers = None
    if summary.total(Status.START):  # only then is the broker asked (and Celery loaded)
        from dbdict_celery.worker.consumers import queue_consumers

        consumers = queue_consumers(store)
    if as_json:
        record = _summary_record(store, summary, stale)
        if consumers:
            record["consumers"] = dataclasses.asdict(consumers)
        print_json(record)
        return
    _print_summary(store, summary, stale)
    if consumers:
        _print_consumers(consumers)


def _print_consumers(found: QueueConsumers) -> None:
    """Each queue holding START jobs and its consumers ("?": the broker could not tell), and
    a line for each queue whose jobs nothing takes."""
    known = found.counts
    rows = [
        [name, found.waiting.get(name, 0), "?" if known is None else known[name] or "none"]
        for name in found.queues
    ]
    stdout().print(rich_table("Queues", ["queue", "START", "consumers"], rows))
    stdout().print(f"consumers: {found.how}", markup=False, highlight=False)
    for name in found.idle():
        hint = f"no worker consumes {name}: its START jobs wait for one started with -Q {name}"
        if needed := gpus_needed(name):
            hint = (f"no worker consumes {name}: its START jobs need {needed} GPUs each and "
                    f"wait for a worker given at least {needed} (DBDICT_GPUS)")  # fmt: skip
        stdout().print(hint, markup=False, highlight=False)


def _print_summary(store: JobStore, summary: Summary, stale: float) -> None:
    experiments = sorted({name for name, _ in summary.counts})
    statuses = list(Status)
    rows = []
    for name in experiments:
        counts = [summary.counts.get((name, status), 0) for status in statuses]
        rows.append([name, *counts, sum(counts)])
    totals = [summary.total(status) for status in statuses]
    rows.append(["total", *totals, sum(totals)])
    columns = ["experiment", *(status.name for status in statuses), "total"]
    stdout().print(rich_table(f"Jobs in {store.path}", columns, rows))
    if not summary.running:
        return
    running = []
    for job in summary.running:
        flag = "STALE" if summary.is_stale(job, stale) else ""
        running.append([job.id, job.host, job.pid, duration(summary.age(job.started_at)),
                        duration(summary.age(job.heartbeat_at)), job.attempts, flag])  # fmt: skip
    shown_all = summary.total(Status.RUNNING) == len(running)
    title = "Running" if shown_all else f"Running (the first {len(running)})"
    columns = ["id", "host", "pid", "running for", "last heartbeat", "attempts", "stale?"]
    stdout().print(rich_table(title, columns, running))


def _summary_record(store: JobStore, summary: Summary, stale: float) -> dict[str, object]:
    counts: dict[str, dict[str, int]] = {}
    for (name, status), number in sorted(summary.counts.items()):
        counts.setdefault(name, {s.name: 0 for s in Status})[status.name] = number
    running = []
    for job in summary.running:
        running.append({
            "id": job.id,
            "host": job.host,
            "pid": job.pid,
            "running_seconds": _seconds(summary.age(job.started_at)),
            "heartbeat_age_seconds": _seconds(summary.age(job.heartbeat_at)),
            "stale": summary.is_stale(job, stale),
        })  # fmt: skip
    totals = {status.name: summary.total(status) for status in Status}
    return {"table": str(store.path), "counts": counts, "totals": totals, "running": running}


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def _wait(store: JobStore, timeout: float | None) -> None:
    """Block until the table has nothing left to run, showing progress."""
    with progress_bar(TimeElapsedColumn()) as progress:
        bar = progress.add_task("jobs ended", total=None)
        api.wait(
            store,
            timeout,
            progress=lambda ended, total: progress.update(bar, total=total, completed=ended),
            idle=lambda seconds: progress.console.print(
                f"no job has run for {seconds:.0f} s: is a worker running on this table? "
                "(dbdict worker, or celery -A dbdict_celery worker, with the same DBDICT_DB "
                "and DBDICT_BROKER)",
                markup=False,
                highlight=False,
            ),
        )


@click.command("list")
@db_options
@status_option
@where_option
@click.option("--sort", metavar="KEY", help="Order by a column or key; -KEY for descending.")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="At most N jobs.")
@click.option("--columns", metavar="A,B,...", help="The columns: row columns or state keys.")
@click.option(
    "--attempt",
    "on_attempt",
    multiple=True,
    metavar="EXPR",
    help="Only jobs with a run meeting this: outcome=lost, host=node3, code_dirty=True, "
    "reason='worker shutdown' (repeatable; one run must meet all).",
)
@click.option(
    "--pareto",
    metavar="KEY:min|max,...",
    help="Only the non-dominated jobs for these objectives (e.g. loss:min,latency_ms:min): "
    "no other listed job is as good on every key and better on one.",
)
@click.option(
    "--group-by",
    metavar="A,B,...",
    help="One row per combination of these keys' values, with its number of jobs.",
)
@click.option(
    "--agg",
    "aggregates",
    multiple=True,
    metavar="FUNC,...:KEY",
    help="With --group-by: count, mean, std, min, max or sum of a key in each group "
    "(mean,std,count:accuracy; repeatable). NaN and non-numbers are left out.",
)
@json_option
def list_command(
    db: str | None,
    table: str | None,
    statuses: tuple[str, ...],
    filters: tuple[str, ...],
    sort: str | None,
    limit: int | None,
    columns: str | None,
    on_attempt: tuple[str, ...],
    pareto: str | None,
    group_by: str | None,
    aggregates: tuple[str, ...],
    as_json: bool,
) -> None:
    """List jobs, one row each, with their parameters and results as columns; or, with
    --group-by, one row per group of jobs with aggregates of their results."""
    if group_by is not None or aggregates:
        _list_groups(db, table, statuses, filters, on_attempt, group_by, aggregates, as_json,
                     others=(sort, limit, columns, pareto))  # fmt: skip
        return
    front = None
    if pareto:
        from dbdict_celery.search.objective import Objective  # Optuna: only when asked

        front = Objective.parse(pareto)
    store = api.JobStore.open(db, table, create=False)
    jobs = store.jobs(chosen_statuses(statuses), filters, limit, sort, attempt=on_attempt)
    if front is not None:
        jobs = api.pareto_front(jobs, front)
    shown = column_names(columns)
    if as_json:
        print_json([columns_record(job, shown) if shown else job_record(job) for job in jobs])
        return
    names = shown or default_columns(jobs)
    unknown = [name for name in names if not any(_has(job, name) for job in jobs)]
    if jobs and unknown:
        blank = "that column is blank" if len(unknown) == 1 else "those columns are blank"
        stderr().print(f"no job has {', '.join(map(repr, unknown))}: {blank} (see the names "
                       "with dbdict show ID)", markup=False)  # fmt: skip
    stdout().print(rich_table(None, names, ([value_of(job, c) for c in names] for job in jobs)))
    click.echo(f"{len(jobs)} jobs", err=True)


def _list_groups(
    db: str | None, table: str | None, statuses: tuple[str, ...], filters: tuple[str, ...],
    on_attempt: tuple[str, ...], group_by: str | None, specs: tuple[str, ...], as_json: bool,
    others: tuple[Any, ...],
) -> None:  # fmt: skip
    """`list --group-by`: the groups, their job counts and aggregates."""
    if group_by is None:
        raise UsageError("--agg goes with --group-by: --group-by lr --agg mean:accuracy")
    if any(option is not None for option in others):
        raise UsageError("--group-by takes --status, --where and --attempt, not --sort, "
                         "--limit, --columns or --pareto")  # fmt: skip
    by = column_names(group_by) or []
    aggregates = api.Aggregate.parse_all(specs)
    store = api.JobStore.open(db, table, create=False)
    groups = store.groups(by, aggregates, chosen_statuses(statuses), filters, on_attempt)
    names = [*by, "jobs", *map(str, aggregates)]
    rows = [
        [*group.values, group.jobs, *(group.results[a] for a in aggregates)] for group in groups
    ]
    if as_json:
        print_json([dict(zip(names, row, strict=True)) for row in rows])
        return
    stdout().print(rich_table(None, names, rows))
    click.echo(f"{len(groups)} groups of {sum(group.jobs for group in groups)} jobs", err=True)


@click.command("show")
@click.argument("job_id", type=int, metavar="ID")
@db_options
@json_option
def show_command(job_id: int, db: str | None, table: str | None, as_json: bool) -> None:
    """Everything the table knows of one job: parameters, state, its curves (steps, last
    value), its runs (where, which code, how each ended; how many died, failed, were
    preempted), last traceback."""
    store = api.JobStore.open(db, table, create=False)
    job = store.get(job_id)
    history = store.attempts(job_id)
    record = _with_run_counts(job_record(job), store.run_counts(job_id))
    curves = store.curve_summaries(job_id)
    if as_json:
        summaries = {key: dataclasses.asdict(curve) for key, curve in curves.items()}
        print_json({**record, "curves": summaries, "history": [attempt_record(a) for a in history]})
        return
    params, state, error = record.pop("params"), record.pop("state"), record.pop("error")
    record["limits"] = api.Limits.of(job).describe()
    record["files"] = str(job_dir(job.exproot, store.path, job.id)) if job.exproot else ""
    changed = sorted(
        (key, value) for key, value in state.items() if params.get(key, state) != value
    )
    tables = [
        (f"Job {job.id} in {store.path}", ["field", "value"], record.items()),
        ("Parameters", ["key", "value"], sorted(params.items())),
        ("State beyond the parameters", ["key", "value"], changed),
    ]
    if curves:
        tables.append((
            f"Curves (every point: dbdict metrics {job.id})",
            ["key", "steps", "last step", "last value"],
            [[key, c.steps, c.last_step, c.last_value] for key, c in curves.items()],
        ))  # fmt: skip
    for title, columns, rows in tables:
        stdout().print(rich_table(title, columns, rows, DETAIL_LIMIT))
    _print_history(history, record["files"])
    if error:
        stdout().print("[bold]Last traceback[/bold]")
        stdout().print(error, markup=False, highlight=False)


def _with_run_counts(record: dict[str, Any], counts: RunCounts) -> dict[str, Any]:
    """A job's record with its deaths, failures and preemptions right after its `attempts`:
    which of its runs use up which limit."""
    fields = list(record.items())
    after = [name for name, _ in fields].index("attempts") + 1
    fields[after:after] = dataclasses.asdict(counts).items()
    return dict(fields)


def _print_history(history: list[Attempt], files: str) -> None:
    """One line per run: how it ended and why, where, for how long, with which code."""
    if not history:
        stdout().print("Runs: none yet")
        return
    rows = [
        [
            attempt.attempt,
            attempt.ended_as,
            attempt.reason or _last_line(attempt.error),
            attempt.host,
            attempt.pid,
            attempt.started_at,
            duration(attempt.finished_at - attempt.started_at) if attempt.finished_at else "",
            attempt.code,
            attempt.python,
        ]
        for attempt in history
    ]
    columns = ["attempt", "outcome", "why", "host", "pid", "started", "ran for", "code", "python"]
    stdout().print(rich_table("Runs", columns, rows))
    if files and any(attempt.code_commit for attempt in history):
        stdout().print(f"each run's record (code, environment, diff): {files}/{RECORDS}*",
                       markup=False, highlight=False)  # fmt: skip


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def _has(job: Job, name: str) -> bool:
    """Whether `name` is a column, or a key of the job's state."""
    key = state_key(name)
    return key is None or key in job.state
