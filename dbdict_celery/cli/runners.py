"""Running jobs from the table: `dbdict sql` (no broker) and `dbdict worker` (Celery)."""

from __future__ import annotations

import os
import sys
from typing import NoReturn

import click

import dbdict_celery as api
from dbdict_celery.cli.options import db_options
from dbdict_celery.config import gpus as configured_gpus
from dbdict_celery.config import stop_signals as configured_stop_signals
from dbdict_celery.config import table_path
from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.sync import Remote


@click.command("sql")
@click.argument("exproot")
@db_options
@click.option(
    "-n",
    "count",
    type=int,
    default=1,
    show_default=True,
    help="How many jobs to run; 0 or less: until none is left.",
)
def sql_command(exproot: str, db: str | None, table: str | None, count: int) -> None:
    """Run jobs from the table on this machine, without a broker.

    Books the highest-priority START job, runs it with its files in
    EXPROOT/dbname/tablename/ID (a path or ssh://host:path; a job scheduled
    with --exproot keeps its own), and repeats. Any number of these may run
    in parallel on one table: no job runs twice. Exits 1 if a job it ran FAILED.
    """
    report = api.run_sql(api.JobStore.open(db, table), exproot, count)
    if report.drained:
        click.echo(f"No more jobs to run (ran {report.ran} jobs)")
    elif report.stopped:
        click.echo(f"Stopped on request (ran {report.ran} jobs)")
    else:
        click.echo(f"Ran {report.ran} jobs")
    if report.failed:
        raise DbdictError(
            f"{report.failed} of the jobs run here FAILED: see dbdict list --status failed"
        )


@click.command(
    "worker", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": True}
)
@click.option(
    "--db",
    metavar="DATABASE",
    help="The job database (sets DBDICT_DB); each message names the table.",
)
@click.option("--broker", metavar="URL", help="The broker (sets DBDICT_BROKER).")
@click.option(
    "--exproot",
    metavar="PATH",
    help="Where jobs scheduled without an exproot keep their files (sets DBDICT_EXPROOT).",
)
@click.option(
    "--grace",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="On SIGTERM, how long running jobs get to save before they are killed "
    "(sets DBDICT_GRACE; default 25).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    help="Runs a failing job gets before it stays FAILED (sets DBDICT_MAX_ATTEMPTS; default 1).",
)
@click.option(
    "--gpus",
    metavar="IDS",
    help="The GPUs this worker hands to its jobs, each to one job at a time (sets "
    "DBDICT_GPUS): 0,1,2,3. Without -c, one pool process per GPU.",
)
@click.option(
    "--stop-signals",
    metavar="NAMES",
    help="The signals that stop the running jobs as SIGTERM does (sets DBDICT_STOP_SIGNALS; "
    "default TERM): TERM,USR2 for Slurm's --signal=B:USR2@120.",
)
@click.argument("celery_options", nargs=-1, type=click.UNPROCESSED)
def worker_command(
    db: str | None,
    broker: str | None,
    exproot: str | None,
    grace: float | None,
    max_attempts: int | None,
    gpus: str | None,
    stop_signals: str | None,
    celery_options: tuple[str, ...],
) -> NoReturn:
    """Start a Celery worker that runs the jobs: `celery -A dbdict_celery worker`.

    Any other option goes to Celery's worker (see `celery worker --help`), before or
    after those above, for example -c 4 (4 jobs at a time) or -Q gpu (only jobs scheduled with
    --queue gpu; -Q dbdict,gpu takes both those and the others). On SIGTERM the running
    jobs are asked to stop (their experiments see switch() == 'stop'), save,
    and go back to START to resume elsewhere.
    """
    settings = {
        "DBDICT_DB": db,
        "DBDICT_BROKER": broker,
        "DBDICT_EXPROOT": exproot and str(Remote.parse(exproot)),
        "DBDICT_GRACE": grace,
        "DBDICT_MAX_ATTEMPTS": max_attempts,
        "DBDICT_STOP_SIGNALS": stop_signals,
        "DBDICT_GPUS": gpus,
    }
    os.environ.update({name: str(value) for name, value in settings.items() if value is not None})
    configured_stop_signals()  # a malformed name fails here, in one line
    devices = configured_gpus()
    if db:
        table_path(db)  # a malformed database fails here, in one line
    options = list(celery_options)
    if not any(option in ("-l", "--loglevel") or option.startswith("--loglevel=")
               for option in options):  # fmt: skip
        options += ["--loglevel", "INFO"]
    sized = any(option.startswith(("-c", "--concurrency", "--autoscale")) for option in options)
    if devices and not sized:  # one pool process per GPU: a job of K GPUs leaves K-1 idle
        options += ["--concurrency", str(len(devices))]
    command = [sys.executable, "-m", "celery", "-A", "dbdict_celery", "worker", *options]
    sys.stdout.flush()
    os.execv(sys.executable, command)
