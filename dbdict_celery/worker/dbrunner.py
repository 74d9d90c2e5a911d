"""Running jobs from the table: one booked job, and the broker-less `dbdict sql` loop."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from dbdict_celery.config import (
    PROCESS,
    capture_enabled,
    heartbeat_interval,
    isolation,
    stale_after,
)
from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.experiment.provenance import Environment, environment
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag, stop_signals
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.store.limits import Limits
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.execution import execute
from dbdict_celery.worker.lease import Lease
from dbdict_celery.worker.leftovers import workdir_prefix
from dbdict_celery.worker.outcome import Outcome
from dbdict_celery.worker.supervisor import supervise

log = logging.getLogger(__name__)

MAX_LEFT_WAITING = 1000  # jobs a `dbdict sql` loop leaves at START before it ends


def book(
    store: JobStore,
    job_id: int | None = None,
    exproot: str | None = None,
    task_id: str | None = None,
    exclude: Collection[int] = (),
    worker: str | None = None,
    devices: tuple[str, ...] | None = None,
) -> Booking | None:
    """Book a job (see `JobStore.book`) with a fresh working directory for its run.

    The booking also records the working directory and opens the run's attempt
    (with this process's environment, `worker` naming the Celery worker), so that
    setting up the run costs no write of its own. `devices`: the GPUs the run is given
    (None: this worker has none, and CUDA_VISIBLE_DEVICES is left as it is). `exproot`
    serves a job scheduled without one; the row names it from the run's first landed
    save (or its outcome), so that a run given back before it pushed anything leaves the
    job free to go elsewhere. None, and no directory left behind, if nothing was booked.
    """
    root = str(Remote.parse(exproot)) if exproot else None
    environment = _environment(store)
    label = "" if job_id is None else f"{job_id}-"
    # named by this process, so that a worker starting here later knows whose it was
    workdir = tempfile.mkdtemp(prefix=f"{workdir_prefix(os.getpid())}{store.path.table}-{label}")
    sent = time.monotonic()
    try:
        job = store.book(
            job_id, exclude=exclude, task_id=task_id, workdir=workdir, worker=worker,
            environment=environment, devices=None if devices is None else ",".join(devices),
        )  # fmt: skip
    except BaseException:
        shutil.rmtree(workdir, ignore_errors=True)
        raise
    if job is None:
        shutil.rmtree(workdir, ignore_errors=True)
        return None
    return Booking(job, sent, root, worker, environment, devices)


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


def run_booked(store: JobStore, booking: Booking, stop: StopFlag | None = None) -> Outcome:
    """Run a job this process has booked, and record its outcome in the row.

    COMPLETE -> DONE; INCOMPLETE -> START with RESTART_PRIORITY (resumable),
    or CANCELLED if a cancel was asked meanwhile; an exception -> FAILED with
    its traceback. `stop` is the flag the caller's stop signals set, if it listens
    already. The experiment runs in a supervised process of its own
    (`supervisor.py`) unless DBDICT_ISOLATION=inline, or outside a main thread
    (where no signal can be heard), where it runs here as a plain call.
    If the exproot cannot be reached or the experiment cannot be found here,
    the job goes back to START untouched (its attempt not counted) and the
    NotRunnableHere error propagates: the problem is this machine's, not the job's.
    The run's working directory is removed at the end.
    """
    job = booking.job
    assert job.workdir is not None, "book() gives every run a working directory"
    try:
        root, interval, lease = _settings(store, booking)
        if isolated():
            return supervise(store, booking, job.workdir, root, interval, lease, stop)
        if Limits.from_record(job.limits).enforced_by_supervisor():
            log.warning("job %s runs in this process (DBDICT_ISOLATION=inline, or not a main "
                        "thread): its time and memory limits are not applied", job.id)  # fmt: skip
        return execute(store, booking, job.workdir, root, stop, lease, interval)
    finally:
        shutil.rmtree(job.workdir, ignore_errors=True)


def isolated() -> bool:
    """Whether experiments run in a process of their own here: DBDICT_ISOLATION (default
    `process`) in a main thread. Outside one (a threads pool, an in-process test worker),
    signals cannot be handled and a fork would copy other threads' locks."""
    return isolation() == PROCESS and threading.current_thread() is threading.main_thread()


def _settings(store: JobStore, booking: Booking) -> tuple[str, float, Lease]:
    """Where the job's files go, how often its run beats, and its lease on them (from the
    booking on: reconcile waits a whole DBDICT_STALE_AFTER before a takeover)."""
    job = booking.job
    try:
        root = job.exproot or booking.exproot
        if root is None:
            raise UsageError(f"job {job.id} has no exproot: give one to schedule or to the runner")
        length = stale_after() / 2
        return root, heartbeat_interval(), Lease(booking.sent + length, length)
    except DbdictError as error:  # this runner's settings: nothing of the job ran
        store.unbook(job, str(error))
        raise


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
    START (priority 2.0) for another runner, so `-n 0` always ends (and once
    MAX_LEFT_WAITING such jobs wait, the loop ends too: it books past them with
    a list sent in every booking, which must stay short). The loop
    also ends when a run was asked to stop (SIGTERM, Ctrl-C): that job is
    saved and back to START, and this process should exit. SIGTERM and SIGINT
    are stop requests from the first booking to the last outcome: a stop
    between a booking and its run is a stop too, never a killed runner.
    """
    with stop_signals(StopFlag()) as stop:
        return _loop(store, exproot, n, stop)


def _loop(store: JobStore, exproot: str, n: int, stop: StopFlag) -> LoopReport:
    ran = failed = 0
    waiting: list[int] = []  # jobs this loop ran that went back to START: not booked again
    while (n <= 0 or ran < n) and not stop.requested and len(waiting) < MAX_LEFT_WAITING:
        booking = book(store, exproot=exproot, exclude=waiting)
        if booking is None:
            return LoopReport(ran, drained=True, stopped=False, failed=failed)
        outcome = run_booked(store, booking, stop)
        ran += 1
        failed += outcome.status is Status.FAILED
        if outcome.status is Status.START:
            waiting.append(booking.job.id)
    return LoopReport(ran, drained=False, stopped=stop.requested, failed=failed)
