"""Exporting the table for pandas: one row per job, flattened parameters and results as columns.

Rows are streamed from the database, so CSV and JSON exports of millions of
jobs never hold them all in memory; Parquet (with pyarrow installed) does.
`pandas.read_csv` reads the CSV unchanged: numbers stay numbers, a value
missing from a job is an empty cell, lists and dicts are JSON text.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import IO, TYPE_CHECKING, Any

from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import JOB_COLUMNS, Job, shown_key

if TYPE_CHECKING:  # not imported at run time: `dbdict --help` reads FORMATS, cheaply
    from dbdict_celery.store.filters import Filter
    from dbdict_celery.store.store import JobStore

FORMATS = ("csv", "json", "parquet")


def export_columns(keys: Iterable[str]) -> list[tuple[str, str | None]]:
    """(column name, state key or None for a row column); a state key named like a row
    column is exported as `state.KEY`."""
    columns: list[tuple[str, str | None]] = [(name, None) for name in JOB_COLUMNS]
    columns += [(shown_key(key), key) for key in keys]
    return columns


def export(
    store: JobStore,
    output: str | IO[str],
    fmt: str | None = None,
    status: Status | Sequence[Status] | None = None,
    where: Iterable[str | Filter] = (),
) -> int:
    """Write the chosen jobs to a file (a path) or a text stream; returns how many.

    The format is `fmt`, else the path's suffix (`.csv`, `.json`, `.parquet`),
    else CSV. Parquet needs a path. Everything is checked before the file is opened.
    """
    if fmt is None:
        suffix = os.path.splitext(output)[1].lstrip(".") if isinstance(output, str) else ""
        fmt = suffix if suffix in FORMATS else "csv"
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    columns, rows = records(store, status, where)
    if fmt == "parquet":
        if not isinstance(output, str):
            raise UsageError("parquet is written to a file: give its path")
        return write_parquet(output, columns, rows)
    if not isinstance(output, str):
        return write(output, fmt, columns, rows)
    with open(output, "w", encoding="utf-8", newline="") as out:
        return write(out, fmt, columns, rows)


def records(
    store: JobStore,
    status: Status | Sequence[Status] | None = None,
    where: Iterable[str | Filter] = (),
) -> tuple[list[str], Iterator[list[Any]]]:
    """The export's column names, and its rows (streamed)."""
    where = list(where)  # read twice below
    columns = export_columns(store.state_keys(status, where))
    rows = (_row(job, columns) for job in store.stream(status, where))
    return [name for name, _ in columns], rows


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
    """Write CSV or JSON to a text stream; returns the number of jobs written."""
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
    """Write a Parquet file (needs pyarrow); returns the number of jobs written."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            "parquet export needs pyarrow: pip install 'dbdict-celery[parquet]'"
        ) from None
    listed = [dict(zip(columns, row, strict=True)) for row in rows]
    try:
        table = pa.Table.from_pylist(listed) if listed else pa.table({c: [] for c in columns})
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise DbdictError(f"cannot write parquet: {error} (csv and json take any values)") from None
    pq.write_table(table, path)
    return len(listed)


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
