"""Getting results and output out: `dbdict export`, `dbdict view`, `dbdict logs`."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import IO

import click

from dbdict_celery.cli.group import cli, db_options, where_option
from dbdict_celery.cli.reading import STATUS
from dbdict_celery.config import validate_table
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.export import FORMATS, records, write, write_parquet
from dbdict_celery.store.logs import read_log
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.view import create_view

FOLLOW_POLL = 1.0


@cli.command("export")
@db_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--status", "statuses", type=STATUS, multiple=True, help="Only these (repeatable).")
@where_option
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (default: standard output).")
def export_command(
    db: str | None,
    table: str | None,
    fmt: str,
    statuses: tuple[str, ...],
    filters: tuple[str, ...],
    output: str | None,
) -> None:
    """One row per job, its parameters and results as columns: for pandas.

    \b
    Example:
        dbdict export --status done -o results.csv
        python -c "import pandas; print(pandas.read_csv('results.csv'))"
    """
    store = JobStore.open(db, table, create=False)
    chosen = [Status[name.upper()] for name in statuses] or None
    columns, rows = records(store, chosen, filters)
    if fmt == "parquet":
        if not output:
            raise click.UsageError("parquet needs -o FILE")
        count = write_parquet(output, columns, rows)
    else:
        with _opened(output) as out:
            count = write(out, fmt, columns, rows)
    click.echo(f"exported {count} jobs" + (f" to {output}" if output else ""), err=True)


@contextlib.contextmanager
def _opened(output: str | None) -> Iterator[IO[str]]:
    if output is None:
        yield sys.stdout
        return
    with open(output, "w", encoding="utf-8", newline="") as out:
        yield out


@cli.command("view")
@click.argument("name")
@db_options
def view_command(name: str, db: str | None, table: str | None) -> None:
    """Create (or remake) the SQL view NAME: one typed column per parameter and result.

    \b
    Example:
        dbdict view mnist_results
        psql -c 'SELECT lr, result_error FROM mnist_results ORDER BY result_error'
    """
    validate_table(name)
    store = JobStore.open(db, table, create=False)
    columns = create_view(store, name)
    described = ", ".join(f"{column.name} ({column.kind})" for column in columns)
    click.echo(f"view {name} over {store.path}: {described or 'no state keys yet'}")


@cli.command("logs")
@click.argument("job_id", type=int, metavar="ID")
@db_options
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output while it runs.")
def logs_command(
    job_id: int, db: str | None, table: str | None, use_stderr: bool, follow: bool
) -> None:
    """Print what a job wrote to stdout (or stderr)."""
    store = JobStore.open(db, table, create=False)
    stream = "stderr" if use_stderr else "stdout"
    shown = 0
    while True:
        job = store.get(job_id)
        where, content = read_log(store, job, stream)
        if len(content) < shown:  # read from another copy, shorter for now
            content = b""
        sys.stdout.buffer.write(content[shown:])
        sys.stdout.flush()
        shown = max(shown, len(content))
        if not follow or job.status not in (Status.START, Status.RUNNING):
            break
        time.sleep(FOLLOW_POLL)
    if not where:
        click.echo(f"job {job_id} has not run yet: no {stream}", err=True)
