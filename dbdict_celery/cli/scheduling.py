"""Putting jobs in the table and on the broker: `dbdict schedule`."""

from __future__ import annotations

import contextlib

import click
from rich.progress import TimeRemainingColumn

from dbdict_celery.cli.group import cli, db_options
from dbdict_celery.cli.output import progress_bar
from dbdict_celery.experiment.params import format_d
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import DEFAULT_PRIORITY
from dbdict_celery.store.schedule import Plan, plan, schedule
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.enqueue import Enqueuer

RESUMABLE = (Status.FAILED, Status.CANCELLED)
BAR_FROM = 1000  # jobs: smaller sweeps are done before a bar would help


@cli.command("schedule")
@click.argument("experiment")
@click.argument("params", nargs=-1)
@db_options
@click.option(
    "--priority", type=float, default=DEFAULT_PRIORITY, show_default=True, help="Higher runs first."
)
@click.option(
    "--exproot", metavar="PATH", help="Where the jobs keep their files: a path or ssh://host:path."
)
@click.option(
    "--samples",
    type=int,
    metavar="N",
    help="Draws of the random values (uniform, loguniform, randint), each crossed with the grid.",
)
@click.option("--seed", type=int, help="Seed of the random draws: the same seed, the same jobs.")
@click.option("--dry-run", is_flag=True, help="Print the jobs it would create; change nothing.")
@click.option(
    "--no-enqueue",
    is_flag=True,
    help="Insert the rows only, send no message (for `dbdict sql` runners).",
)
@click.option(
    "--force",
    is_flag=True,
    help="Put jobs already in the table that FAILED or were CANCELLED back to START "
    "(they resume from their saved state).",
)
def schedule_command(
    experiment: str,
    params: tuple[str, ...],
    db: str | None,
    table: str | None,
    priority: float,
    exproot: str | None,
    samples: int | None,
    seed: int | None,
    dry_run: bool,
    no_enqueue: bool,
    force: bool,
) -> None:
    """Add jobs to the table and send one message per new job (alias: sqlschedule).

    Each of PARAMS is key=value or key::builder. A value choice(a, b, ...) or
    range(start, stop[, step]) makes one job per value; several make the
    grid of all combinations. uniform(a, b), loguniform(a, b) and
    randint(a, b) are drawn --samples times. The experiment must be
    importable here: nothing is inserted otherwise. Scheduling the same
    experiment and parameters twice makes one job.

    \b
    Example: 9 jobs, run by any worker of the table's database:
        dbdict schedule examples.count.experiment target='range(10, 40, 10)' \\
            scale='choice(1, 2, 3)'
    """
    planned = plan(experiment, params, priority, exproot, samples, seed)
    if planned.sweep.draws:
        click.echo(f"random draws with --seed {planned.sweep.seed}", err=True)
    if dry_run:
        for job in planned.jobs():
            click.echo(format_d(job.params, sep=" ", space=False))
        click.echo(f"{len(planned)} jobs would be scheduled (dry run: nothing changed)", err=True)
        return
    store = JobStore.open(db, table)
    created, existing, rerun = _insert_and_send(store, planned, not no_enqueue, force)
    if len(planned) == 1 and not rerun:
        (job_id,) = created or existing
        if created:
            click.echo(f"scheduled job {job_id} in {store.path}")
        else:
            click.echo(f"job {job_id} is already in {store.path}: not scheduled again")
        return
    click.echo(f"scheduled {len(created)} jobs in {store.path}")
    if existing:
        click.echo(f"{len(existing)} were already there: not scheduled again")
    if rerun:
        click.echo(f"{len(rerun)} already there are to run again (--force)")


def _insert_and_send(
    store: JobStore, planned: Plan, send: bool, force: bool
) -> tuple[list[int], list[int], list[int]]:
    """Insert in batches, sending each batch's messages once it is committed."""
    created: list[int] = []
    existing: list[int] = []
    rerun: list[int] = []
    with contextlib.ExitStack() as stack:
        enqueuer = stack.enter_context(Enqueuer(store)) if send else None
        progress = stack.enter_context(
            progress_bar(TimeRemainingColumn(), disable=len(planned) < BAR_FROM)
        )
        bar = progress.add_task("scheduling", total=len(planned))
        for batch in schedule(store, planned):
            new = dict.fromkeys(row.id for row in batch if row.created)  # a sweep may repeat a job
            old = dict.fromkeys(row.id for row in batch if not row.created)
            again = {job.id: job for job in store.requeue(list(old), RESUMABLE)} if force else {}
            if enqueuer is not None:
                priority = {row.id: row.job.priority for row in batch}
                to_send = [(job_id, priority[job_id]) for job_id in new]
                enqueuer.send(to_send + [(job.id, job.priority) for job in again.values()])
            created += new
            rerun += again
            existing += [job_id for job_id in old if job_id not in again]
            progress.advance(bar, len(batch))
    return created, existing, rerun
