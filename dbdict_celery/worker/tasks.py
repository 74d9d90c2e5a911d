"""The one task, `run_job(table, job_id)`: book the row, run the job, record how it ended.

The row decides, never the message: a message for a job that is not START
(a duplicate delivery, a job already running, done or cancelled) books
nothing and is dropped. A job that stops resumable (INCOMPLETE, or stopped
by a revoke or a shutdown) goes back to START with priority 2.0 and is sent
again; a failed job is sent again while it has attempts left
(`DBDICT_MAX_ATTEMPTS`, default 1).
"""

from __future__ import annotations

from celery import Task
from celery.exceptions import Reject
from celery.utils.log import get_task_logger

from dbdict_celery.config import default_exproot, max_attempts
from dbdict_celery.errors import (
    ExprootUnreachable,
    JobNotFound,
    StoreError,
    UsageError,
)
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import RESTART_PRIORITY, Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker import stop_requests
from dbdict_celery.worker.app import app
from dbdict_celery.worker.dbrunner import run_booked
from dbdict_celery.worker.enqueue import RUN_JOB, enqueue
from dbdict_celery.worker.reconcile import reconcile

log = get_task_logger(__name__)

RECONCILE = "dbdict_celery.worker.reconcile"
SKIPPED = "SKIPPED"
STORE_RETRY_DELAY = 30.0
STORE_RETRIES = 10
EXPROOT_RETRY_DELAY = 60.0

__all__ = ["reconcile_table", "run_job"]


@app.task(name=RUN_JOB, bind=True)
def run_job(self: Task[[str, int], str], table: str, job_id: int) -> str:
    """Run job `job_id` of `table` (in this worker's DBDICT_DB) if it is START.

    Returns the status the job ended in, or SKIPPED when it did not run.
    """
    if stop_requests.shutting_down():
        log.info("job %s is left to another worker: this one is shutting down", job_id)
        raise Reject("worker shutting down", requeue=True)
    try:
        store = JobStore.open(None, table, create=False)
        job = store.book(job_id, task_id=self.request.id)
    except UsageError as error:  # no such table, or a bad name: a message from elsewhere
        log.warning("job %s of table %r not run: %s", job_id, table, error)
        return SKIPPED
    except StoreError as error:
        log.error("cannot book job %s: %s", job_id, error)
        raise self.retry(countdown=STORE_RETRY_DELAY, max_retries=STORE_RETRIES) from None
    if job is None:
        _explain_skip(store, job_id)
        return SKIPPED
    try:
        outcome = run_booked(store, job, default_exproot())
    except ExprootUnreachable as error:
        log.error("job %s is back to START, its files are out of reach: %s", job_id, error)
        enqueue(store, [(job.id, job.priority)], record=False, countdown=EXPROOT_RETRY_DELAY)
        return Status.START.name
    if outcome.status is Status.START:
        enqueue(store, [(job.id, RESTART_PRIORITY)], record=False)
    elif outcome.status is Status.FAILED and job.attempts < max_attempts():
        _retry_failed(store, job)
    return "NOT RECORDED" if outcome.status is None else outcome.status.name


def _retry_failed(store: JobStore, job: Job) -> None:
    if store.requeue([job.id], from_statuses=[Status.FAILED]):
        log.info("job %s failed on attempt %s; sending it again", job.id, job.attempts)
        enqueue(store, [(job.id, job.priority)], record=False)


def _explain_skip(store: JobStore, job_id: int) -> None:
    try:
        status = store.get(job_id).status.name
    except JobNotFound:
        log.warning(
            "no job %s in %s: is this worker's DBDICT_DB the one the job was scheduled in?",
            job_id,
            store.path,
        )
        return
    log.info(
        "job %s is %s, not START: nothing to run (a duplicate or stale message)", job_id, status
    )


@app.task(name=RECONCILE)
def reconcile_table(table: str | None = None, stale_after: float | None = None) -> dict[str, int]:
    """`dbdict reconcile` as a task, for Celery beat; returns how many jobs each repair took.

    The table defaults to the one DBDICT_DB names (else `jobs`).
    """
    store = JobStore.open(None, table, create=False)
    done = reconcile(store, stale_after)
    return {
        "requeued": len(done.requeued),
        "failed": len(done.failed),
        "cancelled": len(done.cancelled),
        "resent": len(done.resent),
    }
