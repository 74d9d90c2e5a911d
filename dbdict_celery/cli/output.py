"""How the reading commands print: Rich tables for people, JSON for scripts."""

from __future__ import annotations

import dataclasses
import functools
import json
import sys
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn
from rich.table import Table

from dbdict_celery.store.attempt import Attempt
from dbdict_celery.store.durations import duration
from dbdict_celery.store.job import Job, value_of

PIPED_WIDTH = 200  # a table piped to a file or `less` is not cut to 80 columns
CELL_LIMIT = 200  # characters of a value in a list of jobs
DETAIL_LIMIT = 5000  # characters of a value in `dbdict show`


@functools.cache
def stdout() -> Console:
    """Where tables go: standard output, as wide as the terminal or PIPED_WIDTH when piped."""
    return Console(width=None if sys.stdout.isatty() else PIPED_WIDTH)


@functools.cache
def stderr() -> Console:
    """Where progress bars go, so that piped output stays data."""
    return Console(stderr=True)


def job_record(job: Job) -> dict[str, Any]:
    """A job as plain JSON-able data: status by name, times in ISO 8601."""
    record = _with_iso_times(dataclasses.asdict(job))
    record["status"] = job.status.name
    return record


def columns_record(job: Job, columns: Sequence[str]) -> dict[str, Any]:
    """A job's chosen columns (row columns or state keys, as `list --columns` names them) as
    JSON-able data, led by its id: a script that asked for two columns still knows which
    job each record is."""
    return _with_iso_times({"id": job.id, **{column: value_of(job, column) for column in columns}})


def attempt_record(attempt: Attempt) -> dict[str, Any]:
    """An attempt as plain JSON-able data: outcome as written in the table (None while it
    runs), times in ISO 8601."""
    record = _with_iso_times(dataclasses.asdict(attempt))
    record["outcome"] = attempt.outcome.value if attempt.outcome else None
    return record


def _with_iso_times(record: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value.isoformat() if isinstance(value, datetime) else value
        for key, value in record.items()
    }


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def text(value: Any, limit: int = CELL_LIMIT) -> str:
    """A value as a cell: strings bare, None empty, anything else as Python writes it; cut at
    `limit` characters, saying so (a 50 MB value would take a terminal minutes to lay out)."""
    if value is None:
        return ""
    if isinstance(value, str):
        shown = value
    elif isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S")
    elif isinstance(value, timedelta):
        shown = duration(value)
    else:
        shown = repr(value)
    if len(shown) <= limit:
        return shown
    return f"{shown[:limit]}… ({len(shown):,} characters in all: --json shows them)"


def rich_table(
    title: str | None,
    columns: Iterable[str],
    rows: Iterable[Iterable[Any]],
    limit: int = CELL_LIMIT,
) -> Table:
    """A Rich table of `rows`, each value shown with `text` (cut at `limit` characters)."""
    shown = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        shown.add_column(column, overflow="fold")
    for row in rows:
        shown.add_row(*(text(value, limit) for value in row))
    return shown


def progress_bar(clock: ProgressColumn, disable: bool = False) -> Progress:
    """The bar of a long command, on stderr and gone once done; `clock` is its time column."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        clock,
        console=stderr(),
        transient=True,
        disable=disable,
    )
