"""Running jobs from the table: one booked job, and the broker-less `dbdict sql` loop."""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
import traceback
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from dbdict_celery.config import capture_enabled, heartbeat_interval, stale_after
from dbdict_celery.errors import (
    DbdictError,
    ExperimentUnavailable,
    ModuleMissing,
    NotRunnableHere,
    UsageError,
)
from dbdict_celery.experiment.channel import Channel, resolve_experiment
from dbdict_celery.experiment.provenance import Code, Environment, code_of, environment
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag, stop_signals
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.store.job import RESTART_PRIORITY
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.dbchannel import DBRSyncChannel, row_state

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """How one run ended: the status it left the row in, and whether it was told to stop.

    `status` is None when the row was no longer this run's, so nothing was recorded.
    """

    status: Status | None
    stopped: bool = False


def book(
    store: JobStore,
    job_id: int | None = None,
    exproot: str | None = None,
    task_id: str | None = None,
    exclude: Collection[int] = (),
    worker: str | None = None,
) -> Booking | None:
    """Book a job (see `JobStore.book`) with a fresh working directory for its run.

    The booking also records the working directory and opens the run's attempt
    (with this process's environment, `worker` naming the Celery worker), so that
    setting up the run costs no write of its own. `exproot` serves a job scheduled
    without one; the row names it from the run's first landed save (or its
    outcome), so that a run given back before it pushed anything leaves the job
    free to go elsewhere. None, and no directory left behind, if nothing was booked.
    """
    root = str(Remote.parse(exproot)) if exproot else None
    environment = _environment(store)
    label = "" if job_id is None else f"{job_id}-"
    workdir = tempfile.mkdtemp(prefix=f"dbdict-{store.path.table}-{label}")
    sent = time.monotonic()
    try:
        job = store.book(
            job_id, exclude=exclude, task_id=task_id, workdir=workdir, worker=worker,
            environment=environment,
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    if job is None:
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    return Booking(job, sent, root, worker, environment)


def _environment(store: JobStore) -> Environment | None:
    """This process's environment, kept in the database once, if capture is on."""
    if not capture_enabled():
        return None
    try:
        found = environment()
        store.register_environment(found)
    except Exception:  # capture never fails a run: this run's attempt says nothing of it
        log.exception("this process's environment could not be recorded")
        return None
    return found


def _code(experiment: str) -> Code | None:
    """The code `experiment` runs, if capture is on ("unknown" where it cannot be told)."""
    if not capture_enabled():
        return None
    try:
        return code_of(experiment)
    except Exception:  # capture never fails a run
        log.exception("the code of %s could not be recorded", experiment)
        return Code()


def run_booked(store: JobStore, booking: Booking, stop: StopFlag | None = None) -> Outcome:
    """Run a job this process has booked, and record its outcome in the row.

    COMPLETE -> DONE; INCOMPLETE -> START with RESTART_PRIORITY (resumable),
    or CANCELLED if a cancel was asked meanwhile; an exception -> FAILED with
    its traceback (a SystemExit or the like is recorded too, then goes on up).
    `stop` is the flag the caller's stop signals set, if it listens already.
    If the exproot cannot be reached or the experiment cannot be imported here,
    the job goes back to START untouched (its attempt not counted) and the
    NotRunnableHere error propagates: the problem is this machine's, not the job's.
    The run's working directory is removed at the end.
    """
    job = booking.job
    assert job.workdir is not None, "book() gives every run a working directory"
    try:
        return _run(store, booking, job.workdir, stop)
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)


def _run(store: JobStore, booking: Booking, workdir: str, stop: StopFlag | None) -> Outcome:
    job = booking.job
    try:
        root = job.exproot or booking.exproot
        if root is None:
            raise UsageError(f"job {job.id} has no exproot: give one to schedule or to the runner")
        interval = heartbeat_interval()
        lease = stale_after() / 2  # reconcile waits a whole stale_after before a takeover
    except DbdictError as error:  # this runner's settings: nothing of the job ran
        store.unbook(job, str(error))
        raise
    try:
        experiment = resolve_experiment(job.experiment)
    except ModuleMissing as error:  # scheduled from where it imported: this machine lacks it
        unavailable = ExperimentUnavailable(
            f"{error}: on this machine, {job.experiment!r} is not importable (start workers "
            "where the experiment's module is on PYTHONPATH, or install it)"
        )
        store.unbook(job, str(unavailable))
        raise unavailable from None
    except UsageError as error:  # the experiment's own code is broken: the job's fault
        store.finish(job, Status.FAILED, error=str(error), code=_code(job.experiment))
        return Outcome(Status.FAILED)
    channel = DBRSyncChannel(
        store, booking, workdir, root, experiment, interval, stop,
        lease=lease, code=_code(job.experiment),
    )  # fmt: skip
    try:
        outcome = channel.run(force=True)
    except NotRunnableHere as error:
        store.unbook(job, str(error))
        raise
    except BaseException as error:  # SystemExit too: the row must not stay RUNNING
        failed = _failed(store, channel, error)
        if not isinstance(error, Exception):
            raise
        return failed
    state = row_state(channel.state)
    ended = Status.START if outcome is Channel.INCOMPLETE else Status.DONE
    priority = RESTART_PRIORITY if ended is Status.START else None
    status = store.finish(job, ended, state, priority=priority, **_unrecorded(channel))
    return Outcome(status, channel.stop_requested)


def _unrecorded(channel: DBRSyncChannel) -> dict[str, Any]:
    """What the outcome records of the run beside its status: why it was stopped (if it
    was), and the exproot and code no save recorded yet."""
    return {
        "reason": channel.stop.reason if channel.stop_requested else None,
        "exproot": channel.unrecorded_exproot,
        "code": channel.unrecorded_code,
    }


def _failed(store: JobStore, channel: DBRSyncChannel, error: BaseException) -> Outcome:
    """Record a run that raised: FAILED with the experiment's traceback (or the error that
    ended the run) and its state, or, if that state cannot be stored, with the reason and
    the row's last good save left in place."""
    reason = channel.state.dbdict.get("error") or "".join(
        traceback.format_exception_only(type(error), error)
    )
    try:
        state: dict[str, Any] | None = row_state(channel.state)
    except DbdictError as unstorable:
        state = None
        if str(unstorable) not in reason:
            reason = f"{reason}\n{unstorable} (the row keeps its last good save)"
    status = store.finish(channel.job, Status.FAILED, state, error=reason, **_unrecorded(channel))
    log.error("job %s failed:\n%s", channel.job.id, reason)
    return Outcome(status, channel.stop_requested)


@dataclass(frozen=True)
class LoopReport:
    """What a `dbdict sql` loop did: jobs run, how many of them ended FAILED, and why it ended."""

    ran: int
    drained: bool
    stopped: bool
    failed: int = 0


def run_sql(store: JobStore, exproot: str, n: int = 1) -> LoopReport:
    """Book and run jobs one after another: `n` of them, or until none is left if n <= 0.

    A loop runs each job at most once: a job that returns INCOMPLETE waits at
    START (priority 2.0) for another runner, so `-n 0` always ends. The loop
    also ends when a run was asked to stop (SIGTERM, Ctrl-C): that job is
    saved and back to START, and this process should exit. SIGTERM and SIGINT
    are stop requests from the first booking to the last outcome: a stop
    between a booking and its run is a stop too, never a killed runner.
    """
    with stop_signals(StopFlag()) as stop:
        return _loop(store, exproot, n, stop)


def _loop(store: JobStore, exproot: str, n: int, stop: StopFlag) -> LoopReport:
    ran: list[int] = []
    failed = 0
    while (n <= 0 or len(ran) < n) and not stop.requested:
        booking = book(store, exproot=exproot, exclude=ran)
        if booking is None:
            return LoopReport(len(ran), drained=True, stopped=False, failed=failed)
        outcome = run_booked(store, booking, stop)
        ran.append(booking.job.id)
        failed += outcome.status is Status.FAILED
    return LoopReport(len(ran), drained=False, stopped=stop.requested, failed=failed)
