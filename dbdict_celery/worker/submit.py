"""Submitting a plan: its rows into the table, then one message per new job.

Rows are inserted in batches and each batch's messages are sent once it is
committed, all over one broker connection opened before the first row: a
broker that is down fails the submission before anything is written, and a
worker never receives an id it cannot find.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from dbdict_celery.errors import UsageError
from dbdict_celery.store.plan import Plan
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.control import REQUEUEABLE
from dbdict_celery.worker.enqueue import Enqueuer, Ring


@dataclass(frozen=True)
class Submission:
    """What a submission did, by job id."""

    created: list[int] = field(default_factory=list)  # new rows (sent, unless send=False)
    existing: list[int] = field(default_factory=list)  # already in the table: left as they are
    rerun: list[int] = field(default_factory=list)  # already there, FAILED or CANCELLED: rerun


def submit(
    store: JobStore,
    planned: Plan,
    send: bool = True,
    force: bool = False,
    progress: Callable[[int], None] | None = None,
) -> Submission:
    """Insert a plan's jobs and send one message per new job (none with `send=False`,
    for `dbdict sql` runners).

    A job already in the table (same experiment and parameters) is not
    inserted again; with `force`, such a job that FAILED or was CANCELLED
    goes back to START, with the plan's queue and limits, and resumes from its
    saved state. `progress(n)` is
    called as each batch of n planned jobs is done.
    """
    cap, group = planned.limits.max_running, planned.limits.group
    held = None if cap is None or group is None else store.group_cap(group)
    if held not in (None, cap):
        raise UsageError(
            f"group {group!r} has --max-running {held}: give its jobs the same cap (or "
            "another --group)"
        )
    done = Submission()
    with contextlib.ExitStack() as stack:
        enqueuer = stack.enter_context(Enqueuer(store)) if send else None
        for batch in store.insert(planned.jobs()):
            new = dict.fromkeys(row.id for row in batch if row.created)  # a sweep may repeat a job
            old = dict.fromkeys(row.id for row in batch if not row.created)
            again = (
                {
                    job.id: job
                    for job in store.requeue(
                        list(old), REQUEUEABLE, queue=planned.queue, limits=planned.limits
                    )
                }
                if force
                else {}
            )
            if enqueuer is not None:
                planned_job = {row.id: row.job for row in batch}
                to_send = [
                    Ring(job_id, planned_job[job_id].priority, planned_job[job_id].queue)
                    for job_id in new
                ]
                enqueuer.send(to_send + [Ring.of(job) for job in again.values()])
            done.created.extend(new)
            done.rerun.extend(again)
            done.existing.extend(job_id for job_id in old if job_id not in again)
            if progress is not None:
                progress(len(batch))
    return done
