"""Exporting the table for pandas: one row per job, flattened parameters and results as columns;
or one row per point of the jobs' curves (`metrics=True`), the long form plots and
`groupby` want.

Rows are streamed from the database, so CSV and JSON exports of millions of
jobs or points never hold them all in memory; Parquet (with pyarrow installed)
does. `pandas.read_csv` reads the CSV unchanged: numbers stay numbers (NaN and
infinities as `nan`, `inf`, `-inf`), a value missing from a job is an empty
cell, lists and dicts are JSON text.
"""

from __future__ import annotations

import csv
import itertools
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import JOB_COLUMNS, Job, shown_key, state_key

if TYPE_CHECKING:  # not imported at run time: `dbdict --help` reads FORMATS, cheaply
    from dbdict_celery.store.filters import Filter
    from dbdict_celery.store.store import JobStore

FORMATS = ("csv", "json", "parquet")
METRIC_COLUMNS = ("key", "step", "value", "run")  # after a metric row's job columns
JOBS_PER_READ = 1000  # jobs whose points a metric export reads in one query


def export_columns(keys: Iterable[str]) -> list[tuple[str, str | None]]:
    """(column name, state key or None for a row column); a state key named like a row
    column is exported as `state.KEY`."""
    columns: list[tuple[str, str | None]] = [(name, None) for name in JOB_COLUMNS]
    columns += [(shown_key(key), key) for key in keys]
    return columns


def chosen_columns(names: Iterable[str]) -> list[tuple[str, str | None]]:
    """The id, then the columns a user named (row columns or state keys, `state.KEY` for a
    state key named like a row column), as `export_columns` gives them: every row says which
    job it is, and no column comes twice."""
    return [(name, state_key(name)) for name in dict.fromkeys(["id", *names])]


def export(
    store: JobStore,
    output: str | IO[str],
    fmt: str | None = None,
    status: Status | Sequence[Status] | None = None,
    where: Iterable[str | Filter] = (),
    columns: Sequence[str] | None = None,
    metrics: bool = False,
    keys: Sequence[str] | None = None,
) -> int:
    """Write the chosen jobs to a file (a path) or a text stream; returns how many rows.

    One row per job, with every column (or the id and `columns`); with `metrics`,
    one row per point the jobs reported, of the metric `keys` (None: every key):
    id, `columns`, key, step, value, run (see `metric_records`).
    The format is `fmt`, else the path's suffix (`.csv`, `.json`, `.parquet`),
    else CSV. Parquet needs a path. Everything is checked before the file is opened.
    """
    if fmt is None:
        suffix = os.path.splitext(output)[1].lstrip(".") if isinstance(output, str) else ""
        fmt = suffix if suffix in FORMATS else "csv"
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if keys is not None and not metrics:
        raise UsageError("metric keys choose among the curves: export them with metrics")
    if fmt == "parquet" and not isinstance(output, str):
        raise UsageError("parquet is written to a file: give its path")
    if metrics:
        names, rows = metric_records(store, status, where, columns or (), keys)
    else:
        names, rows = records(store, status, where, columns)
    if not isinstance(output, str):
        return write(output, fmt, names, rows)
    if fmt == "parquet":
        return write_parquet(output, names, rows)
    with open(output, "w", encoding="utf-8", newline="") as out:
        return write(out, fmt, names, rows)


def records(
    store: JobStore,
    status: Status | Sequence[Status] | None = None,
    where: Iterable[str | Filter] = (),
    columns: Sequence[str] | None = None,
) -> tuple[list[str], Iterator[list[Any]]]:
    """The export's column names, and its rows (streamed): every column, or the id and
    `columns`."""
    where = list(where)  # read twice below
    if columns is None:
        chosen = export_columns(store.state_keys(status, where))
    else:
        chosen = chosen_columns(columns)
    rows = (_row(job, chosen) for job in _started(store.stream(status, where)))
    return [name for name, _ in chosen], rows


def metric_records(
    store: JobStore,
    status: Status | Sequence[Status] | None = None,
    where: Iterable[str | Filter] = (),
    columns: Sequence[str] = (),
    keys: Sequence[str] | None = None,
) -> tuple[list[str], Iterator[list[Any]]]:
    """The metric export's column names, and its rows (streamed): one per point the chosen
    jobs reported, of `keys` (None: every key), by job, key and step. Each row is the job's
    id and `columns`, then the point's key, step, value (NaN and infinities kept) and run
    (the attempt that reported it). A state key named like one of those is `state.KEY`.
    """
    chosen = [
        (f"state.{name}" if name in METRIC_COLUMNS else name, key)
        for name, key in chosen_columns(columns)
    ]
    names = [name for name, _ in chosen] + list(METRIC_COLUMNS)
    return names, _points(store, _started(store.stream(status, where)), chosen, keys)


def _started(jobs: Iterator[Job]) -> Iterator[Job]:
    """A stream of jobs whose query has run: a filter the table refuses is told now, before
    any file is opened."""
    first = next(jobs, None)
    return jobs if first is None else itertools.chain([first], jobs)


def _points(
    store: JobStore,
    jobs: Iterator[Job],
    columns: list[tuple[str, str | None]],
    keys: Sequence[str] | None,
) -> Iterator[list[Any]]:
    """The metric rows of `jobs`, a batch of jobs at a time, each batch's points read in
    one query."""
    while batch := list(itertools.islice(jobs, JOBS_PER_READ)):
        leading = {job.id: _row(job, columns) for job in batch}
        for point in store.stream_metrics(list(leading), keys):
            yield [*leading[point.job_id], point.key, point.step, point.value, point.run]


def _row(job: Job, columns: list[tuple[str, str | None]]) -> list[Any]:
    row = []
    for name, key in columns:
        if key is None:
            value = getattr(job, name)
            row.append(value.name if isinstance(value, Status) else value)
        else:
            row.append(job.state.get(key, job.params.get(key)))
    return row


def write(out: IO[str], fmt: str, columns: list[str], rows: Iterable[list[Any]]) -> int:
    """Write CSV or JSON to a text stream; returns the number of rows written."""
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for row in rows:
            writer.writerow([_cell(value) for value in row])
            count += 1
        return count
    if fmt == "json":
        out.write("[")
        count = 0
        for row in rows:
            out.write(",\n" if count else "\n")
            out.write(json.dumps(dict(zip(columns, row, strict=True)), default=_iso))
            count += 1
        out.write("\n]\n")
        return count
    raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


def write_parquet(path: str, columns: list[str], rows: Iterable[list[Any]]) -> int:
    """Write a Parquet file (needs pyarrow); returns the number of rows written.

    The rows are gathered column by column (a list per column, not a dict per row: a
    metric export holds millions of them), each column's type found from its values.
    """
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "parquet export needs pyarrow: pip install 'dbdict-celery[parquet]'"
        ) from None
    gathered: list[list[Any]] = [[] for _ in columns]
    for row in rows:
        for values, value in zip(gathered, row, strict=True):
            values.append(value)
    try:
        table = pa.table(dict(zip(columns, gathered, strict=True)))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DbdictError(f"cannot write parquet: {error} (csv and json take any values)") from None
    pq.write_table(table, path)
    return int(table.num_rows)


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return value


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
