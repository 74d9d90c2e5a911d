"""Changing jobs from outside their runs, the table first and the broker second.

`cancel` records the cancel in the rows (START jobs end at once; RUNNING
ones are asked to stop), then revokes their Celery tasks with SIGTERM so
they stop now rather than at their next heartbeat. A revoke is only a hint:
a worker that misses it still learns of the cancel from the row.
`requeue` puts jobs back to START and sends their messages. `prioritize` changes the
priority of waiting jobs and sends each a new message at it, recorded as its only one: the
message sent before, still in the queue at the old priority, books nothing.
"""

from __future__ import annotations

import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.filters import Filter
from dbdict_celery.store.job import Job
from dbdict_celery.store.operations import Cancellation
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import app, is_embedded
from dbdict_celery.worker.enqueue import Ring, enqueue

CANCELLABLE = (Status.START, Status.RUNNING)
REQUEUEABLE = (Status.FAILED, Status.CANCELLED, Status.PRUNED)


def cancel(
    store: JobStore, job_ids: Sequence[int] | None = None, where: Iterable[str | Filter] = ()
) -> Cancellation:
    """Cancel the jobs named, or the START and RUNNING jobs matching `where`.

    START jobs end CANCELLED at once; running ones are asked to stop (their
    experiments see `switch() == 'stop'`), save, and end CANCELLED with their state.
    """
    where = list(where)
    if job_ids is None and not where:
        raise UsageError("name the jobs to cancel: job ids, or filters such as lr>0.1")
    cancellation = store.cancel(chosen(store, job_ids, where, CANCELLABLE))
    for job in cancellation.stopping:
        if job.task_id:
            app.control.revoke(job.task_id, terminate=True, signal=signal.SIGTERM.name)
    return cancellation


def requeue(
    store: JobStore,
    job_ids: Sequence[int] | None = None,
    where: Iterable[str | Filter] = (),
    statuses: Sequence[Status] = REQUEUEABLE,
    priority: float | None = None,
    send: bool = True,
) -> list[Job]:
    """Put jobs back to START, to resume from their saved state, and send their messages.

    The jobs named, else every job in `statuses` (FAILED and CANCELLED by
    default) that matches `where`; a named job in another status is left as it is.
    Returns the jobs changed.
    """
    jobs = store.requeue(chosen(store, job_ids, where, statuses), statuses, priority)
    if send and jobs:
        enqueue(store, [Ring.of(job) for job in jobs])
    return jobs


@dataclass(frozen=True)
class Prioritized:
    """What `prioritize` changed: the waiting jobs given the new priority, and whether they
    were sent again at it (not on the embedded broker, which ignores priorities)."""

    jobs: list[Job]
    sent: bool


def prioritize(
    store: JobStore,
    priority: float,
    job_ids: Sequence[int] | None = None,
    where: Iterable[str | Filter] = (),
    send: bool = True,
) -> Prioritized:
    """Give the waiting (START) jobs named, or matching `where`, a new priority, and send
    each a message at it (Redis and RabbitMQ deliver higher priorities first). The embedded
    broker delivers in the order messages were sent, whatever their priority: there only
    the rows change (which `dbdict sql` runners book by)."""
    where = list(where)
    if job_ids is None and not where:
        raise UsageError("name the jobs to reprioritize: job ids, or filters such as lr>0.1")
    jobs = store.reprioritize(chosen(store, job_ids, where, [Status.START]), priority)
    sent = send and bool(jobs) and not is_embedded(app)
    if sent:
        enqueue(store, [Ring.of(job) for job in jobs], sole=True)
    return Prioritized(jobs, sent)


def chosen(
    store: JobStore,
    job_ids: Sequence[int] | None,
    where: Iterable[str | Filter],
    statuses: Sequence[Status],
) -> list[int]:
    """The ids named (each checked to exist: JobNotFound names a missing one), else the ids of
    the jobs in `statuses` matching `where`."""
    where = list(where)
    if job_ids is not None and where:
        raise UsageError("choose jobs by id or by filters, not both")
    if job_ids is None:
        return [job.id for job in store.stream(list(statuses), where)]
    for job_id in job_ids:
        store.get(job_id)
    return list(job_ids)
