"""Repairing the table against reality, any time, as often as wanted, workers running or not.

Two repairs (and the history's own: attempts an earlier release left open are
closed). A RUNNING job whose heartbeat stopped long ago lost its worker
(SIGKILL, OOM, a dead node): it goes back to START from its last save and is
sent again (FAILED once it has lost too many runs so: its preemptions and
failures do not count). A START job without a message (lost by a broker
restart, or scheduled with --no-enqueue) is sent again. Neither can make a job
run twice: the put-back is one conditional UPDATE on the run that went silent,
and a surplus message finds its job no longer START.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from dbdict_celery.config import LOST_RUNS
from dbdict_celery.config import stale_after as default_stale_after
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import RESTART_PRIORITY
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE
from dbdict_celery.worker.broker_queue import jobs_with_messages
from dbdict_celery.worker.enqueue import Enqueuer, Ring
from dbdict_celery.worker.groups import wake

log = logging.getLogger(__name__)


@dataclass
class Reconciliation:
    """What one pass changed."""

    requeued: list[int] = field(default_factory=list)  # stale RUNNING -> START, sent again
    failed: list[int] = field(default_factory=list)  # stale RUNNING, out of lost runs: FAILED
    cancelled: list[int] = field(default_factory=list)  # stale RUNNING with a cancel asked
    resent: list[int] = field(default_factory=list)  # START without a message, sent again
    broker_readable: bool = True

    @property
    def changed(self) -> bool:
        return bool(self.requeued or self.failed or self.cancelled or self.resent)


def reconcile(
    store: JobStore, stale_after: float | None = None, max_attempts: int = LOST_RUNS
) -> Reconciliation:
    """One pass of both repairs on `store`'s table.

    A RUNNING job is stale after `stale_after` seconds without a heartbeat
    (default `DBDICT_STALE_AFTER`, 300); it fails once `max_attempts` of its runs were lost
    (this one included: see `RunCounts`).
    """
    stale_after = stale_after or default_stale_after()
    done = Reconciliation()
    closed = store.close_orphaned_attempts()
    if closed:
        log.info("%s attempts whose end was not recorded (runs of an earlier release) closed",
                 closed)  # fmt: skip
    requeued = []
    for job in store.stale(stale_after):
        status = store.release_stale(job, stale_after, max_attempts)
        if status is Status.START:
            done.requeued.append(job.id)
            requeued.append(job)
        elif status is Status.FAILED:
            done.failed.append(job.id)
        elif status in (Status.CANCELLED, Status.PRUNED):
            done.cancelled.append(job.id)
    with Enqueuer(store) as enqueuer:
        # their old message may still sit with the dead worker: send a new one regardless
        enqueuer.send(Ring.of(job, RESTART_PRIORITY) for job in requeued)
        queues = {queue or QUEUE for queue in store.queues(Status.START)}
        waiting = jobs_with_messages(store.path.table, queues, held_for=stale_after)
        if waiting is None:
            done.broker_readable = False
            log.warning("this broker cannot be read: only jobs never sent are sent now")
        unsent = [
            job
            for job in store.stream(Status.START)
            if job.id not in done.requeued
            and (job.id not in waiting if waiting is not None else job.task_id is None)
        ]
        capped = [job.id for job in unsent if job.max_running is not None]
        resent = [Ring.of(job) for job in unsent if job.max_running is None]
        enqueuer.send(resent)
        done.resent = [ring.job_id for ring in resent]
    # a capped group's jobs without a message wait parked, and as many as it has room for
    # are woken: those whose message was lost, or whose waker died, among them
    for group in sorted({*store.park_unsent(capped), *store.parked_groups()}):
        done.resent += wake(store, group)
    return done
