"""Faults 6 and 7: every message delivered twice; many workers racing while jobs are
revoked and cancelled."""

from __future__ import annotations

import random
import time

from celery import Celery

from dbdict_celery.experiment.status import Status
from dbdict_celery.worker.app import QUEUE
from dbdict_celery.worker.enqueue import RUN_JOB
from tests.chaos.conftest import RACE_JOBS, Chaos
from tests.chaos.faults import running_job_in
from tests.chaos.ledger import settle
from tests.conftest import wait_until
from tests.deployments import broker_of

STRIKE_EVERY = 0.2  # seconds between two revokes or cancels


def test_every_message_published_twice(chaos: Chaos) -> None:
    """Each job's message is published a second time, with the same task id, before any
    worker starts: one copy runs the job, the other finds it no longer START."""
    jobs = chaos.schedule()
    app = Celery(broker=broker_of(chaos.deployment))
    table = chaos.deployment.store().path.table
    with app.producer_or_acquire() as producer:
        for job in jobs:
            app.send_task(RUN_JOB, args=(table, job.id), task_id=job.task_id, queue=QUEUE,
                          priority=6, producer=producer)  # fmt: skip
    workers = [chaos.deployment.start_worker("-c", "2") for _ in range(2)]
    verdict = chaos.check("every message twice", timeout=60 + chaos.jobs)
    assert verdict.resumed == 0, "no job was booked a second time"
    wait_until(lambda: sum(worker.text().count("'SKIPPED'") for worker in workers) >= len(jobs),
               "every second copy to find its job already run or running", timeout=120)  # fmt: skip
    assert sum(worker.text().count("'SKIPPED'") for worker in workers) == len(jobs)


def test_eight_processes_race_while_jobs_are_revoked_and_cancelled(chaos: Chaos) -> None:
    """Four workers of two processes race on at least 1,000 jobs; running jobs are revoked
    (Celery's terminate) or cancelled (`dbdict cancel`) at random. Each such job ends
    CANCELLED with its state saved (or DONE, if it finished first); requeued, it resumes."""
    count = max(RACE_JOBS, chaos.jobs)
    chaos.schedule(count, pause=0.1)  # long enough for a strike to find its job running
    chaos.reconcile_every(2.0)
    for _ in range(4):
        chaos.deployment.start_worker("-c", "2")
    app = Celery(broker=broker_of(chaos.deployment))
    store = chaos.deployment.store()
    struck: set[int] = set()
    while chaos.ended() < count * 0.8:
        target = running_job_in(store, struck)
        if target is None:
            continue
        job_id, _ = target
        struck.add(job_id)
        if random.random() < 0.5:  # noqa: S311
            # what `dbdict cancel` does, in-process: a CLI process started under load may
            # come after the job's second or so of work; the row first, then the revoke
            store.cancel([job_id])
        task_id = store.get(job_id).task_id
        assert task_id is not None, "a running job records its task"
        app.control.revoke(task_id, terminate=True, signal="SIGTERM")
        time.sleep(STRIKE_EVERY)
    settle(store, timeout=120 + count)
    ends = {job.id: job.status for job in store.jobs(ids=sorted(struck))}
    assert set(ends.values()) <= {Status.CANCELLED, Status.DONE}, ends
    cancelled = [job_id for job_id, status in ends.items() if status is Status.CANCELLED]
    assert len(cancelled) >= min(10, len(struck) // 4), "struck jobs were stopped while running"
    done = chaos.deployment.dbdict("requeue", *map(str, cancelled))
    assert done.returncode == 0, done.stderr
    chaos.check("8 processes, revokes, cancels", timeout=120 + count)
