"""Changing jobs from the command line: `dbdict cancel`, `dbdict requeue`, `dbdict priority`,
`dbdict reconcile`."""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING

import click

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, json_option, stale_after_option, where_option
from dbdict_celery.cli.output import print_json, stderr
from dbdict_celery.config import LOST_RUNS
from dbdict_celery.errors import BrokerError, StoreError, TableMissing, UsageError
from dbdict_celery.experiment.status import Status

if TYPE_CHECKING:
    from dbdict_celery.worker.reconcile import Reconciliation

ENDED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.PRUNED)
STATUS_NAMES = click.Choice([status.name.lower() for status in ENDED])
LISTED = 20
WATCH_TICK = 0.2  # seconds between looks at the stop flag while waiting


@click.command("cancel")
@click.argument("job_ids", nargs=-1, type=int, metavar="[ID]...")
@db_options
@where_option
@json_option
def cancel_command(
    job_ids: tuple[int, ...],
    db: str | None,
    table: str | None,
    filters: tuple[str, ...],
    as_json: bool,
) -> None:
    """Cancel jobs: START ones at once, RUNNING ones stop (their experiments see
    switch() == 'stop'), save and end CANCELLED with their state."""
    _check_choice(job_ids, filters, by_status=False)
    store = api.JobStore.open(db, table, create=False)
    cancellation = api.cancel(store, job_ids or None, filters)
    if as_json:
        stopping = [job.id for job in cancellation.stopping]
        print_json({"cancelled": cancellation.cancelled, "stopping": stopping})
        return
    if cancellation.cancelled:
        click.echo(f"cancelled {_ids(cancellation.cancelled)}")
    if cancellation.stopping:
        click.echo(f"asked running {_ids([job.id for job in cancellation.stopping])} to stop")
    changed = set(cancellation.cancelled) | {job.id for job in cancellation.stopping}
    for job_id in sorted(set(job_ids) - changed):
        click.echo(f"job {job_id} is {store.get(job_id).status.name}: nothing to cancel")
    if not job_ids and not changed:
        click.echo("no job to cancel")


@click.command("requeue")
@click.argument("job_ids", nargs=-1, type=int, metavar="[ID]...")
@db_options
@click.option(
    "--status",
    "statuses",
    type=STATUS_NAMES,
    multiple=True,
    help="Which statuses to take back (repeatable; default failed and cancelled).",
)
@where_option
@click.option("--priority", type=float, help="A new priority (default: keep each job's).")
@click.option("--no-enqueue", is_flag=True, help="Send no message (for `dbdict sql` runners).")
@json_option
def requeue_command(
    job_ids: tuple[int, ...],
    db: str | None,
    table: str | None,
    statuses: tuple[str, ...],
    filters: tuple[str, ...],
    priority: float | None,
    no_enqueue: bool,
    as_json: bool,
) -> None:
    """Put jobs back to START and send them again; they resume from their saved state.

    Give IDs, or --status and --where to choose them (--status failed alone
    takes back every failed job).
    """
    _check_choice(job_ids, filters, by_status=bool(statuses))
    store = api.JobStore.open(db, table, create=False)
    wanted = [Status[name.upper()] for name in statuses] or [Status.FAILED, Status.CANCELLED]
    jobs = api.requeue(store, job_ids or None, filters, wanted, priority, send=not no_enqueue)
    if as_json:
        print_json({"requeued": [job.id for job in jobs]})
        return
    if jobs:
        click.echo(f"requeued {_ids([job.id for job in jobs])}")
    for job_id in sorted(set(job_ids) - {job.id for job in jobs}):
        status = store.get(job_id).status.name
        click.echo(f"job {job_id} is {status}: not requeued (--status {status.lower()} takes it)")
    if not job_ids and not jobs:
        click.echo("no job to requeue")


@click.command("priority")
@click.argument("job_ids", nargs=-1, type=int, metavar="[ID]...")
@click.argument("priority", type=float, metavar="P")
@db_options
@where_option
@click.option("--no-enqueue", is_flag=True, help="Send no message (for `dbdict sql` runners).")
@json_option
def priority_command(
    job_ids: tuple[int, ...],
    priority: float,
    db: str | None,
    table: str | None,
    filters: tuple[str, ...],
    no_enqueue: bool,
    as_json: bool,
) -> None:
    """Give waiting (START) jobs priority P (higher runs first), and send them again at it.

    Give IDs, or --where to choose them: dbdict priority 12 13 5, or dbdict priority
    --where 'lr<0.01' 0. The message sent before is left in the queue: whichever comes
    first runs the job, once. The embedded broker takes messages in the order they were
    sent: there only the rows change.
    """
    _check_choice(job_ids, filters, by_status=False)
    store = api.JobStore.open(db, table, create=False)
    done = api.prioritize(store, priority, job_ids or None, filters, send=not no_enqueue)
    jobs = done.jobs
    if as_json:
        print_json({"reprioritized": [job.id for job in jobs], "sent": done.sent})
        return
    if jobs:
        click.echo(f"priority {priority:g} for {_ids([job.id for job in jobs])}")
        if not done.sent and not no_enqueue:
            click.echo("the embedded broker runs messages in the order they were sent: only "
                       "the rows changed", err=True)  # fmt: skip
    for job_id in sorted(set(job_ids) - {job.id for job in jobs}):
        click.echo(f"job {job_id} is {store.get(job_id).status.name}: only waiting jobs change")
    if not job_ids and not jobs:
        click.echo("no waiting job matches")


def _check_choice(job_ids: tuple[int, ...], filters: tuple[str, ...], by_status: bool) -> None:
    """Refuse a command that names no job, or names them twice over, before anything else."""
    if job_ids and filters:
        raise UsageError("give job IDs or --where, not both")
    if not job_ids and not filters and not by_status:
        raise UsageError("give job IDs, or --where (or --status) to choose jobs")


def _ids(job_ids: list[int]) -> str:
    shown = ", ".join(map(str, job_ids[:LISTED]))
    if len(job_ids) > LISTED:
        shown += f" and {len(job_ids) - LISTED} more"
    return ("job " if len(job_ids) == 1 else f"{len(job_ids)} jobs: ") + shown


@click.command("reconcile")
@db_options
@stale_after_option("A RUNNING job silent this long lost its worker")
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    default=LOST_RUNS,
    show_default=True,
    help="Lost runs (this one included) a job may have before it stays FAILED: a job that "
    "kills its worker (out of memory) does not loop forever; preemptions and failures do "
    "not count.",
)
@click.option("--watch", is_flag=True, help="Keep repairing, every --interval seconds.")
@click.option(
    "--interval",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
)
@json_option
def reconcile_command(
    db: str | None,
    table: str | None,
    stale_after: float | None,
    max_attempts: int,
    watch: bool,
    interval: float,
    as_json: bool,
) -> None:
    """Repair the table: jobs whose worker died go back to START and are sent
    again; START jobs whose message was lost are sent again.

    Safe any time, any number of times, with workers running: it never makes
    a job run twice.
    """
    if watch:
        _watch(db, table, stale_after, max_attempts, interval, as_json)
        return
    store = api.JobStore.open(db, table, create=False)
    _report(api.reconcile(store, stale_after, max_attempts), as_json, quiet=False)


def _watch(
    db: str | None,
    table: str | None,
    stale_after: float | None,
    max_attempts: int,
    interval: float,
    as_json: bool,
) -> None:
    """Reconcile every `interval` seconds until SIGTERM or SIGINT.

    A database or broker that does not answer (restarting) is said once per pass on
    stderr, and the next pass tries again: a repair loop must outlive what it repairs.

    The signal handler only sets a flag: a handler that took a lock (as
    `threading.Event.set` does) could deadlock with the code it interrupted.
    """
    stop = [False]

    def request_stop(*_: object) -> None:
        stop[0] = True

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, request_stop)
    while not stop[0]:
        try:
            store = api.JobStore.open(db, table, create=False)
            _report(api.reconcile(store, stale_after, max_attempts), as_json, quiet=True)
        except TableMissing:
            pass  # a watch may start before anything is scheduled: the table comes later
        except (StoreError, BrokerError) as error:
            stderr().print(f"reconcile: {error}; trying again in {interval:g} s", markup=False)
        deadline = time.monotonic() + interval
        while not stop[0] and time.monotonic() < deadline:
            time.sleep(min(WATCH_TICK, max(0.0, deadline - time.monotonic())))


def _report(done: Reconciliation, as_json: bool, quiet: bool) -> None:
    if as_json:
        print_json({"requeued": done.requeued, "failed": done.failed, "cancelled": done.cancelled,
                    "resent": done.resent, "broker_readable": done.broker_readable})  # fmt: skip
        return
    lines = [  # what happened, said of one job and of several
        (done.requeued, "lost its worker", "lost their worker", ": back to START and sent again"),
        (done.failed, "lost its worker and is", "lost their worker and are",
         " out of attempts: FAILED"),
        (done.cancelled, "lost its worker", "lost their worker", " after a cancel: CANCELLED"),
        (done.resent, "was", "were", " START without a message: sent again"),
    ]  # fmt: skip
    for ids, one, several, what in lines:
        if ids:
            click.echo(f"{_ids(ids)} {one if len(ids) == 1 else several}{what}")
    if not done.changed and not quiet:
        click.echo("nothing to repair")
