"""Fault 10: experiments that misbehave (never listen for a stop, leave child processes,
use a process pool) under pool kills, cancels and a warm shutdown."""

from __future__ import annotations

import signal

from dbdict_celery.experiment.status import Status
from tests.chaos.conftest import Chaos
from tests.chaos.faults import kill, pool_children, running_job_in
from tests.chaos.workload import behaviour
from tests.conftest import tagged_processes, wait_until


def test_hostile_jobs_under_kills_cancels_and_a_shutdown(chaos: Chaos) -> None:
    """A quarter of the jobs never call switch(), a quarter leave a `sleep` running, a quarter
    compute with a multiprocessing Pool. Pool processes are killed mid-job, runaway jobs are
    cancelled, and the worker is shut down warm: every job ends as it should, from its last
    save, and no process a job started is left running."""
    count = max(20, chaos.jobs // 4)
    chaos.deployment.env["DBDICT_GRACE"] = "1"
    jobs = chaos.schedule(count, 0.3, "hostile=True")
    store = chaos.deployment.store()
    worker = chaos.deployment.start_worker("-c", "4")
    chaos.midway(1 / 4, of=count)
    for _ in range(3):
        target = running_job_in(store, set(), pool_children(worker))
        if target is not None:
            kill(target[1])
    chaos.midway(2 / 4, of=count)
    runaway = [
        job.id
        for job in store.jobs(Status.RUNNING)
        if behaviour(int(job.params["n"]), hostile=True) == "runaway"
    ][:2]
    if runaway:
        assert chaos.deployment.dbdict("cancel", *map(str, runaway)).returncode == 0
    chaos.midway(3 / 4, of=count)
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0, worker.text()[-3000:]
    chaos.deployment.start_worker("-c", "4")
    allowed = {job_id: {Status.CANCELLED, Status.DONE} for job_id in runaway}
    verdict = chaos.check("hostile jobs", timeout=120 + 2 * count, allowed=allowed)
    assert verdict.jobs == len(jobs)
    marker = f"CHAOS_CHILD={chaos.ledger}"
    wait_until(lambda: not tagged_processes(marker), "no child of a job to be left", timeout=20)
