"""Putting jobs in the table and on the broker: `dbdict schedule`."""

from __future__ import annotations

import click
from rich.progress import TimeRemainingColumn

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, limit_options
from dbdict_celery.cli.output import progress_bar
from dbdict_celery.experiment.params import format_d
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import DEFAULT_PRIORITY

BAR_FROM = 1000  # jobs: smaller sweeps are done before a bar would help


@click.command("schedule")
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
    "--queue",
    metavar="NAME",
    help="The Celery queue the jobs are sent to, and sent again to: only workers started "
    "with -Q NAME run them (e.g. gpu). Default: the queue every worker consumes.",
)
@click.option(
    "--samples",
    type=int,
    metavar="N",
    help="Draws of the random values (uniform, loguniform, randint), each crossed with the grid.",
)
@click.option("--seed", type=int, help="Seed of the random draws: the same seed, the same jobs.")
@limit_options
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
    queue: str | None,
    samples: int | None,
    seed: int | None,
    limits: api.Limits,
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
    planned = api.plan(experiment, params, priority, exproot, samples, seed, queue, limits)
    if planned.sweep.draws:
        click.echo(f"random draws with --seed {planned.sweep.seed}", err=True)
    if dry_run:
        for job in planned.jobs():
            click.echo(format_d(job.params, sep=" ", space=False))
        click.echo(f"{len(planned)} jobs would be scheduled (dry run: nothing changed)", err=True)
        return
    store = api.JobStore.open(db, table)
    with progress_bar(TimeRemainingColumn(), disable=len(planned) < BAR_FROM) as progress:
        bar = progress.add_task("scheduling", total=len(planned))
        done = api.submit(store, planned, not no_enqueue, force, lambda n: progress.advance(bar, n))
    created, existing, rerun = done.created, done.existing, done.rerun
    if len(planned) == 1 and not rerun:
        (job_id,) = created or existing
        if created:
            click.echo(f"scheduled job {job_id} in {store.path}")
        else:
            click.echo(f"job {job_id} is already in {store.path}: not scheduled again")
            _hint_at_requeue(store, existing)
        return
    click.echo(f"scheduled {len(created)} jobs in {store.path}")
    if existing:
        were = "1 job was" if len(existing) == 1 else f"{len(existing)} jobs were"
        click.echo(f"{were} already there: not scheduled again")
        _hint_at_requeue(store, existing)
    if rerun:
        click.echo(f"{len(rerun)} already there are to run again (--force)")


def _hint_at_requeue(store: api.JobStore, existing: list[int]) -> None:
    """Say how to run again the jobs left as they are that ended without a result."""
    ended = [job.id for job in store.jobs([Status.FAILED, Status.CANCELLED], ids=existing)]
    if not ended:
        return
    which = f"job {ended[0]}" if len(ended) == 1 else f"{len(ended)} of them"
    example = f"dbdict requeue {ended[0]}" if len(ended) == 1 else "dbdict requeue ID..."
    click.echo(
        f"{which} FAILED or CANCELLED: `{example}` resumes from the saved state, "
        "or schedule again with --force",
        err=True,
    )
