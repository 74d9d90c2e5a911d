"""The one task, `run_job(table, job_id)`: book the row, run the job, record how it ended.

The row decides, never the message: a message for a job that is not START
(a duplicate delivery, a job already running, done or cancelled) books
nothing and is dropped. A job that stops resumable (INCOMPLETE, or stopped
by a revoke or a shutdown) goes back to START with priority 2.0 and is sent
again; a failed job is sent again as its limits say (`--retries`, else while its
failures are fewer than `DBDICT_MAX_ATTEMPTS`, default 1): its preemptions and deaths do
not count.
"""

from __future__ import annotations

import functools
import os
import socket

from celery import Task
from celery.exceptions import Reject
from celery.utils.log import get_task_logger

from dbdict_celery.config import (
    LOST_RUNS,
    default_exproot,
    gpus,
    heartbeat_interval,
    max_attempts,
    retry_delay,
    stale_after,
)
from dbdict_celery.errors import (
    JobNotFound,
    NotRunnableHere,
    StoreError,
    TableMissing,
    UsageError,
)
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag, stop_signals
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.groups import PARKED
from dbdict_celery.store.job import RESTART_PRIORITY, Job
from dbdict_celery.store.limits import Limits, gpus_needed
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker import (  # noqa: F401 (log_noise, startup: their signals)
    log_noise,
    startup,
    stop_requests,
)
from dbdict_celery.worker.app import RECONCILE, app
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.dbrunner import book, run_booked
from dbdict_celery.worker.enqueue import RUN_JOB, Ring, enqueue
from dbdict_celery.worker.gpu_slots import Stopped, devices_taken
from dbdict_celery.worker.groups import wake
from dbdict_celery.worker.leftovers import kill_orphans
from dbdict_celery.worker.process_tree import is_running
from dbdict_celery.worker.reconcile import reconcile

log = get_task_logger(__name__)

SKIPPED = "SKIPPED"
IDLE_DELAY = 1.0  # seconds before a job that returned INCOMPLETE unasked runs again, at first
STORE_RETRY_DELAY = 30.0
STORE_RETRIES = 10
TAKEOVER_LOOKS = 30  # looks, a heartbeat apart, at a dead run's row before leaving it be

__all__ = ["reconcile_table", "run_job"]


@app.task(name=RUN_JOB, bind=True)
def run_job(self: Task[[str, int], str], table: str, job_id: int) -> str:
    """Run job `job_id` of `table` (in this worker's DBDICT_DB) if it is START.

    Returns the status the job ended in, or SKIPPED when it did not run.
    SIGTERM (a revoke, a shutdown) is a stop request from the first moment:
    a job stopped while it is booked or its files fetched goes back to START.
    """
    if stop_requests.shutting_down():
        log.info("job %s is left to another worker: this one is shutting down", job_id)
        raise Reject("worker shutting down", requeue=True)
    with stop_signals(stop_requests.WorkerStopFlag()) as stop:
        return _with_devices(self, table, job_id, stop)


def _with_devices(task: Task[[str, int], str], table: str, job_id: int, stop: StopFlag) -> str:
    """Take the GPUs the job's queue says it needs (waiting for them, unbooked, while other
    jobs of this worker have them), then book and run it with them."""
    mine = gpus()
    needed = gpus_needed((task.request.delivery_info or {}).get("routing_key"))
    if needed > len(mine):  # a worker consuming a GPU queue by hand: not one of ours
        log.error("job %s needs %s GPUs and this worker has %s: sent again in %.0f s, for "
                  "another worker", job_id, needed, len(mine), retry_delay())  # fmt: skip
        raise task.retry(countdown=retry_delay(), max_retries=None)
    try:
        with devices_taken(mine, needed, stop) as taken:
            return _book_and_run(task, table, job_id, stop, tuple(taken) if mine else None)
    except Stopped:  # before it was booked: its message goes back for another worker
        raise Reject("stopped while waiting for GPUs", requeue=True) from None


def _book_and_run(
    task: Task[[str, int], str],
    table: str,
    job_id: int,
    stop: StopFlag,
    devices: tuple[str, ...] | None,
) -> str:
    try:
        store = _store(table, os.environ.get("DBDICT_DB"), os.getpid())
        booking = book(
            store, job_id, default_exproot(), task_id=task.request.id,
            worker=task.request.hostname, devices=devices,
        )  # fmt: skip
    except TableMissing as error:  # this worker's DBDICT_DB may not be the job's database
        log.error(
            "job %s of table %r cannot be run here: %s. Is DBDICT_DB on this worker the "
            "database it was scheduled in? Its message goes back, to be tried again in %.0f s",
            job_id, table, error, STORE_RETRY_DELAY,
        )  # fmt: skip
        raise task.retry(countdown=STORE_RETRY_DELAY, max_retries=STORE_RETRIES) from None
    except UsageError as error:  # a malformed table name: not a message of ours
        log.error("job %s of table %r not run: %s", job_id, table, error)
        return SKIPPED
    except StoreError as error:
        log.error("cannot book job %s: %s", job_id, error)
        raise task.retry(countdown=STORE_RETRY_DELAY, max_retries=STORE_RETRIES) from None
    if booking is None:
        booking = _take_over_a_dead_run(store, job_id, task, devices)
    if booking is None:
        _explain_skip(store, job_id)
        return SKIPPED
    try:
        return _run(store, booking, stop)
    finally:
        if booking.job.run_group is not None and booking.job.max_running is not None:
            wake(store, booking.job.run_group)  # its place is free: the next may take it


def _run(store: JobStore, booking: Booking, stop: StopFlag) -> str:
    """Run a booked job and send it again as its outcome asks; the status it ended in."""
    job = booking.job
    job_id = job.id
    try:
        outcome = run_booked(store, booking, stop)
    except NotRunnableHere as error:
        delay = retry_delay()
        log.error(
            "job %s cannot run on this worker, and is back to START (sent again in %.0f s): %s",
            job_id, delay, error,
        )  # fmt: skip
        enqueue(store, [Ring.of(job)], record=False, countdown=delay)
        return Status.START.name
    if outcome.status is Status.START:
        idle = _idle_delay(store, job) if outcome.voluntary else None
        enqueue(store, [Ring.of(job, RESTART_PRIORITY)], record=False, countdown=idle)
    elif outcome.status is Status.FAILED and not outcome.died:
        _retry_if_allowed(store, job, outcome.raised)
    return "NOT RECORDED" if outcome.status is None else outcome.status.name


@functools.lru_cache(maxsize=64)
def _store(table: str, database: str | None, pid: int) -> JobStore:
    """One store per table of this worker's database (`database`: DBDICT_DB, which names
    it) and process, kept for every later message: its statements are compiled once, not
    once per job. A table not there yet is not kept."""
    return JobStore.open(None, table, create=False)


def _idle_delay(store: JobStore, job: Job) -> float:
    """How long a job that went back to START by itself (returned INCOMPLETE unasked) waits
    before it is sent again: IDLE_DELAY seconds, doubled for each such run in a row, at most
    DBDICT_RETRY_DELAY. A job returning INCOMPLETE in a loop never hogs the workers."""
    in_a_row = 0
    for attempt in reversed(store.attempts(job.id)):
        if attempt.outcome is not AttemptOutcome.INCOMPLETE or attempt.reason is not None:
            break
        in_a_row += 1
    return float(min(retry_delay(), IDLE_DELAY * 2 ** max(0, in_a_row - 1)))


def _retry_if_allowed(store: JobStore, job: Job, raised: tuple[str, ...]) -> None:
    """Send a job that failed again if its limits allow (see `Limits`): its failures so far
    (its preemptions and deaths do not count) are within its --retries (else the worker's
    DBDICT_MAX_ATTEMPTS - 1), and it raised an exception --retry-on names (any, if it
    names none; a run a limit ended raised none). A job given --retries is sent again after
    its backoff; one retried by DBDICT_MAX_ATTEMPTS at once."""
    limits = Limits.from_record(job.limits)
    failures = store.run_counts(job.id).failures
    allowed = max_attempts() - 1 if limits.retries is None else limits.retries
    if failures > allowed or not limits.retried(raised):
        return
    # a delayed message is held by a worker, unacknowledged: reconcile sends again one held
    # longer than DBDICT_STALE_AFTER, so no delay reaches it
    delay = None if limits.retries is None else min(limits.retry_delay(failures), stale_after() / 2)
    if store.requeue([job.id], from_statuses=[Status.FAILED]):
        log.info("job %s failed (%s of %s tries); sending it again in %.1f s",
                 job.id, failures, allowed + 1, delay or 0.0)  # fmt: skip
        enqueue(store, [Ring.of(job)], record=False, countdown=delay)


def _take_over_a_dead_run(
    store: JobStore, job_id: int, task: Task[[str, int], str], devices: tuple[str, ...] | None
) -> Booking | None:
    """Book again a job whose run died with its pool process, its supervisor (killed, out
    of memory, a crash), so that it need not wait for reconcile's minutes of staleness.

    Its message comes back at once (`task_reject_on_worker_lost`). If the row still shows
    the run this very message started, on this host, and its process is gone, what that
    run started is killed and the job goes back from its last save (FAILED once it has lost
    LOST_RUNS runs: its preemptions and failures do not count) and is booked again, once
    its heartbeat is two beats old: a live run of a machine of the same name in another
    pid namespace (containers sharing a host name) keeps beating, and is left be.
    """
    task_id = task.request.id
    try:
        row = store.get(job_id)
    except JobNotFound:
        return None
    if not (
        row.status is Status.RUNNING
        and task_id is not None
        and row.task_id == task_id
        and row.host == socket.gethostname()
        and row.pid is not None
        and not is_running(row.pid)
    ):
        return None
    kill_orphans()  # what the dead process's experiment started, if it escaped
    reason = (
        f"its process died while running it (host {row.host}, pid {row.pid}): killed, out of "
        "memory, or it called os._exit"
    )
    beat = heartbeat_interval()
    status = store.release_lost(row, LOST_RUNS, reason, silent_for=2 * beat)
    if status is None:  # its heartbeat is still fresh: look again after a beat
        if task.request.retries >= TAKEOVER_LOOKS:
            log.info("job %s keeps beating: its run lives on elsewhere; this copy is done", job_id)
            return None
        raise task.retry(countdown=beat, max_retries=TAKEOVER_LOOKS)
    log.warning("job %s: %s; it is now %s", job_id, reason, status.name)
    if status is not Status.START:
        return None
    return book(store, job_id, default_exproot(), task_id=task_id, worker=task.request.hostname,
                devices=devices)  # fmt: skip


def _explain_skip(store: JobStore, job_id: int) -> None:
    try:
        job = store.get(job_id)
    except JobNotFound:
        log.warning(
            "no job %s in %s: is this worker's DBDICT_DB the one the job was scheduled in?",
            job_id,
            store.path,
        )
        return
    if job.status is Status.START and job.task_id == PARKED:
        log.info("job %s waits for room in its group %s (at most %s running): parked, until "
                 "one of them ends", job_id, job.run_group, job.max_running)  # fmt: skip
        return
    if job.status is Status.START:  # a later message is its only one (`dbdict priority`)
        log.info("job %s: this message was replaced by task %s: nothing to run", job_id,
                 job.task_id)  # fmt: skip
        return
    log.info("job %s is %s, not START: nothing to run (a duplicate or stale message)", job_id,
             job.status.name)  # fmt: skip


@app.task(name=RECONCILE)
def reconcile_table(table: str | None = None, stale_after: float | None = None) -> dict[str, int]:
    """`dbdict reconcile` as a task, for Celery beat; returns how many jobs each repair took.

    The table defaults to the one DBDICT_DB names (else `jobs`); while it is not there yet
    (a worker with -B started before anything was scheduled) there is nothing to repair.
    """
    try:
        store = JobStore.open(None, table, create=False)
    except TableMissing:
        return {}
    done = reconcile(store, stale_after)
    return {
        "requeued": len(done.requeued),
        "failed": len(done.failed),
        "cancelled": len(done.cancelled),
        "resent": len(done.resent),
    }
