"""Running jobs from the table: one booked job, and the broker-less `dbdict sql` loop."""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass

from dbdict_celery.config import heartbeat_interval
from dbdict_celery.errors import ExprootUnreachable, UsageError
from dbdict_celery.experiment.channel import Channel, resolve_experiment
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.store.job import RESTART_PRIORITY, Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.dbchannel import DBRSyncChannel, row_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How one run ended: the status it left the row in, and whether it was told to stop.

    `status` is None when the row was no longer this run's, so nothing was recorded.
    """

    status: Status | None
    stopped: bool = False


def run_booked(store: JobStore, job: Job, exproot: str | None = None) -> Outcome:
    """Run a job this process has booked, and record its outcome in the row.

    COMPLETE -> DONE; INCOMPLETE -> START with RESTART_PRIORITY (resumable),
    or CANCELLED if a cancel was asked meanwhile; an exception -> FAILED with
    its traceback (a SystemExit or the like is recorded too, then goes on up).
    The job's own exproot (given at scheduling) wins over `exproot`. If the
    exproot cannot be reached, the job goes back to START untouched and the
    SyncError propagates: the problem is this machine's, not the job's.
    """
    root = job.exproot or (str(Remote.parse(exproot)) if exproot else None)
    if root is None:
        store.finish(job, Status.START)
        raise UsageError(f"job {job.id} has no exproot: give one to schedule or to the runner")
    try:
        experiment = resolve_experiment(job.experiment)
    except UsageError as error:
        store.finish(job, Status.FAILED, error=str(error))
        return Outcome(Status.FAILED)
    workdir = tempfile.mkdtemp(prefix=f"dbdict-{store.path.table}-{job.id}-")
    channel = DBRSyncChannel(store, job, workdir, root, experiment, heartbeat_interval())
    try:
        outcome = channel.run(force=True)
    except ExprootUnreachable:
        store.finish(job, Status.START)
        raise
    except BaseException as error:  # SystemExit too: the row must not stay RUNNING
        failed = _failed(store, channel)
        if not isinstance(error, Exception):
            raise
        return failed
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    state = row_state(channel.state)
    if outcome is Channel.INCOMPLETE:
        status = store.finish(job, Status.START, state, priority=RESTART_PRIORITY)
    else:
        status = store.finish(job, Status.DONE, state)
    return Outcome(status, channel.stop_requested)


def _failed(store: JobStore, channel: DBRSyncChannel) -> Outcome:
    error = channel.state.dbdict.get("error")
    status = store.finish(channel.job, Status.FAILED, row_state(channel.state), error=error)
    log.error("job %s failed:\n%s", channel.job.id, error)
    return Outcome(status, channel.stop_requested)


@dataclass(frozen=True)
class LoopReport:
    """What a `dbdict sql` loop did: jobs run, and why it ended."""

    ran: int
    drained: bool
    stopped: bool


def run_sql(store: JobStore, exproot: str, n: int = 1) -> LoopReport:
    """Book and run jobs one after another: `n` of them, or until none is left if n <= 0.

    A loop runs each job at most once: a job that returns INCOMPLETE waits at
    START (priority 2.0) for another runner, so `-n 0` always ends. The loop
    also ends when a run was asked to stop (SIGTERM, Ctrl-C): that job is
    saved and back to START, and this process should exit.
    """
    ran: list[int] = []
    while n <= 0 or len(ran) < n:
        job = store.book(exclude=ran)
        if job is None:
            return LoopReport(len(ran), drained=True, stopped=False)
        outcome = run_booked(store, job, exproot)
        ran.append(job.id)
        if outcome.stopped:
            return LoopReport(len(ran), drained=False, stopped=True)
    return LoopReport(len(ran), drained=False, stopped=False)
