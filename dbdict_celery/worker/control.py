"""Changing jobs from outside their runs, the table first and the broker second.

`cancel` records the cancel in the rows (START jobs end at once; RUNNING
ones are asked to stop), then revokes their Celery tasks with SIGTERM so
they stop now rather than at their next heartbeat. A revoke is only a hint:
a worker that misses it still learns of the cancel from the row.
`requeue` puts jobs back to START and sends their messages.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import Cancellation, JobStore
from dbdict_celery.worker.app import app
from dbdict_celery.worker.enqueue import enqueue


def cancel(store: JobStore, job_ids: Sequence[int]) -> Cancellation:
    """Cancel jobs; running ones are stopped through their channel, state saved."""
    cancellation = store.cancel(job_ids)
    for job in cancellation.stopping:
        if job.task_id:
            app.control.revoke(job.task_id, terminate=True, signal=signal.SIGTERM.name)
    return cancellation


def requeue(
    store: JobStore,
    job_ids: Sequence[int],
    from_statuses: Sequence[Status] = (Status.FAILED, Status.CANCELLED),
    priority: float | None = None,
    send: bool = True,
) -> list[Job]:
    """Put jobs back to START, to resume from their saved state, and send their messages."""
    jobs = store.requeue(job_ids, from_statuses, priority)
    if send and jobs:
        enqueue(store, [(job.id, job.priority) for job in jobs])
    return jobs
