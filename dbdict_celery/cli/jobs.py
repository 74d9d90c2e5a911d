"""Changing jobs from the command line: `dbdict cancel` and `dbdict requeue`."""

from __future__ import annotations

import click

from dbdict_celery import control
from dbdict_celery.cli.group import cli, db_options
from dbdict_celery.errors import UsageError
from dbdict_celery.job import Status
from dbdict_celery.store import JobStore

ENDED = (Status.DONE, Status.FAILED, Status.CANCELLED)
STATUS_NAMES = click.Choice([status.name.lower() for status in ENDED])


@cli.command("cancel")
@click.argument("job_ids", nargs=-1, type=int, metavar="ID...")
@db_options
def cancel_command(job_ids: tuple[int, ...], db: str | None, table: str | None) -> None:
    """Cancel jobs: START ones at once, RUNNING ones stop (their experiments see
    switch() == 'stop'), save and end CANCELLED with their state."""
    store = JobStore.open(db, table)
    _check_ids(store, job_ids)
    cancellation = control.cancel(store, job_ids)
    if cancellation.cancelled:
        click.echo(f"cancelled {_ids(cancellation.cancelled)}")
    if cancellation.stopping:
        click.echo(f"asked running {_ids([job.id for job in cancellation.stopping])} to stop")
    untouched = sorted(set(job_ids) - set(cancellation.cancelled)
                       - {job.id for job in cancellation.stopping})  # fmt: skip
    for job_id in untouched:
        click.echo(f"job {job_id} is {store.get(job_id).status.name}: nothing to cancel")


@cli.command("requeue")
@click.argument("job_ids", nargs=-1, type=int, metavar="ID...")
@db_options
@click.option(
    "--status",
    "statuses",
    type=STATUS_NAMES,
    multiple=True,
    help="Which statuses to take back (repeatable; default failed and cancelled).",
)
@click.option("--priority", type=float, help="A new priority (default: keep each job's).")
@click.option("--no-enqueue", is_flag=True, help="Send no message (for `dbdict sql` runners).")
def requeue_command(
    job_ids: tuple[int, ...],
    db: str | None,
    table: str | None,
    statuses: tuple[str, ...],
    priority: float | None,
    no_enqueue: bool,
) -> None:
    """Put jobs back to START; they resume from their saved state."""
    store = JobStore.open(db, table)
    _check_ids(store, job_ids)
    chosen = [Status[name.upper()] for name in statuses] or [Status.FAILED, Status.CANCELLED]
    jobs = control.requeue(store, job_ids, chosen, priority, send=not no_enqueue)
    if jobs:
        click.echo(f"requeued {_ids([job.id for job in jobs])}")
    for job_id in sorted(set(job_ids) - {job.id for job in jobs}):
        status = store.get(job_id).status.name
        click.echo(f"job {job_id} is {status}: not requeued (--status {status.lower()} takes it)")


def _check_ids(store: JobStore, job_ids: tuple[int, ...]) -> None:
    """Refuse an empty or unknown id before anything changes."""
    if not job_ids:
        raise UsageError("give at least one job ID")
    for job_id in job_ids:
        store.get(job_id)  # JobNotFound names the missing one


def _ids(job_ids: list[int]) -> str:
    return ("job " if len(job_ids) == 1 else "jobs ") + ", ".join(map(str, job_ids))
