"""Getting results and output out: `dbdict export`, `dbdict view`, `dbdict logs`."""

from __future__ import annotations

import sys
import time

import click

import dbdict_celery as api
from dbdict_celery.cli.options import (
    chosen_statuses,
    column_names,
    db_options,
    status_option,
    where_option,
)
from dbdict_celery.config import validate_table
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.export import FORMATS

FOLLOW_POLL = 1.0


@click.command("export")
@db_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@status_option
@where_option
@click.option(
    "--columns",
    metavar="A,B,...",
    help="Only these columns after the id: row columns or state keys (default: every one; "
    "with --metrics: none).",
)
@click.option(
    "--metrics",
    is_flag=True,
    help="One row per point of the jobs' curves: id, the --columns, key, step, value, run.",
)
@click.option("--key", "keys", multiple=True, metavar="KEY",
              help="With --metrics: only this curve (repeatable).")  # fmt: skip
@click.option("-o", "--output", metavar="FILE", help="Write to FILE (default: standard output).")
def export_command(
    db: str | None,
    table: str | None,
    fmt: str,
    statuses: tuple[str, ...],
    filters: tuple[str, ...],
    columns: str | None,
    metrics: bool,
    keys: tuple[str, ...],
    output: str | None,
) -> None:
    """One row per job, its parameters and results as columns; or, with --metrics, one row
    per point of the curves the jobs reported (channel.report): for pandas.

    \b
    Examples:
        dbdict export --status done -o results.csv
        python -c "import pandas; print(pandas.read_csv('results.csv'))"
        dbdict export --metrics --columns lr,model --key loss -o curves.parquet
    """
    if fmt == "parquet" and not output:
        raise click.UsageError("parquet needs -o FILE")
    if keys and not metrics:
        raise click.UsageError("--key chooses among the curves: add --metrics")
    store = api.JobStore.open(db, table, create=False)
    count = api.export(store, output or sys.stdout, fmt, chosen_statuses(statuses), filters,
                       column_names(columns), metrics, list(keys) or None)  # fmt: skip
    what = "points" if metrics else "jobs"
    click.echo(f"exported {count} {what}" + (f" to {output}" if output else ""), err=True)


@click.command("view")
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
    store = api.JobStore.open(db, table, create=False)
    columns = api.create_view(store, name)
    described = ", ".join(f"{column.name} ({column.kind})" for column in columns)
    click.echo(f"view {name} over {store.path}: {described or 'no state keys yet'}")


@click.command("logs")
@click.argument("job_id", type=int, metavar="ID")
@db_options
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new output while it runs.")
def logs_command(
    job_id: int, db: str | None, table: str | None, use_stderr: bool, follow: bool
) -> None:
    """Print what a job wrote to stdout (or stderr)."""
    store = api.JobStore.open(db, table, create=False)
    stream = "stderr" if use_stderr else "stdout"
    shown = 0
    while True:
        job = store.get(job_id)
        where, content = api.read_log(store, job, stream)
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
