"""`dbdict metrics`: the curves one job reported (`channel.report`), as a table, JSON or CSV.

The table is for reading in a terminal: a row per step, a column per key. JSON
and CSV are the long form scripts and pandas want, one record per point,
written by the export's writers so that NaN and infinities come out as in
every other export (`NaN`/`Infinity` in JSON, `nan`/`inf` in CSV).
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import click

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, json_option
from dbdict_celery.cli.output import rich_table, stdout
from dbdict_celery.errors import UsageError
from dbdict_celery.store.export import METRIC_COLUMNS, write

if TYPE_CHECKING:
    from rich.table import Table

    from dbdict_celery.store.metrics import MetricPoint
    from dbdict_celery.store.store import JobStore


@click.command("metrics")
@click.argument("job_id", type=int, metavar="ID")
@db_options
@click.option("--key", "keys", multiple=True, metavar="KEY", help="Only this curve (repeatable).")
@json_option
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (key,step,value,run), for pandas.")
def metrics_command(
    job_id: int,
    db: str | None,
    table: str | None,
    keys: tuple[str, ...],
    as_json: bool,
    as_csv: bool,
) -> None:
    """The curves one job reported with channel.report(step, loss=...): a row per step and
    a column per key, or one record per point (key, step, value, run: the attempt that
    reported it) with --json or --csv.

    \b
    Examples:
        dbdict metrics 42 --key loss
        dbdict metrics 42 --csv > curves.csv
    """
    if as_json and as_csv:
        raise UsageError("--json and --csv: choose one")
    store = api.JobStore.open(db, table, create=False)
    store.get(job_id)  # an id with no job is told as `dbdict show` tells it
    chosen = list(keys) or None
    found: set[str] = set()
    if as_json or as_csv:
        rows = _records(store.stream_metrics(job_id, chosen), found)
        write(sys.stdout, "json" if as_json else "csv", list(METRIC_COLUMNS), rows)
    else:
        listed = store.metrics(job_id, chosen)
        found.update(point.key for point in listed)
        if listed:  # the title above the table: a narrow table would fold a long one
            stdout().print(f"Curves of job {job_id} in {store.path}", markup=False)
            stdout().print(_steps_table(listed))
    missing = [key for key in keys if key not in found]
    if not found or missing:
        click.echo(_absent(store, job_id, missing), err=True)


def _records(points: Iterable[MetricPoint], found: set[str]) -> Iterator[list[Any]]:
    """Each point as a row of METRIC_COLUMNS, noting its key in `found` as it goes by."""
    for point in points:
        found.add(point.key)
        yield [point.key, point.step, point.value, point.run]


def _steps_table(points: list[MetricPoint]) -> Table:
    """A row per step, a column per key (blank where a key has no point at that step), and
    the run that reported each step's points when more than one run did."""
    keys = list(dict.fromkeys(point.key for point in points))
    by_step: dict[int, dict[str, float]] = defaultdict(dict)
    runs: dict[int, set[int | None]] = defaultdict(set)
    for point in points:
        by_step[point.step][point.key] = point.value
        runs[point.step].add(point.run)
    several = len(set().union(*runs.values())) > 1
    columns = ["step", *keys, *(["run"] if several else [])]
    rows = []
    for step in sorted(by_step):
        values = [by_step[step].get(key) for key in keys]
        ordered = sorted(runs[step], key=lambda run: -1 if run is None else run)
        reported = ", ".join("?" if run is None else str(run) for run in ordered)
        rows.append([step, *values, *([reported] if several else [])])
    return rich_table(None, columns, rows)


def _absent(store: JobStore, job_id: int, missing: list[str]) -> str:
    """One line saying which curves a job lacks, naming those it has."""
    reported = list(store.curve_summaries(job_id))
    if not reported:
        return (
            f"job {job_id} reported no curves (an experiment reports them with "
            "channel.report(step, loss=...))"
        )
    absent = ", ".join(map(repr, missing))
    return f"job {job_id} reported no {absent}: its curves are {', '.join(reported)}"
