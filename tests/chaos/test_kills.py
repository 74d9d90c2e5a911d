"""Faults 1 to 3: processes killed or shut down while jobs run."""

from __future__ import annotations

import time
from signal import SIGQUIT, SIGTERM

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome
from tests.chaos.conftest import Chaos
from tests.chaos.faults import kill, pool_children, running_job_in
from tests.conftest import wait_until

KILL_EVERY = 0.3  # seconds between two kills: the pool has time to start new children


def test_pool_children_sigkilled_mid_job_again_and_again(chaos: Chaos) -> None:
    """SIGKILL a running job's pool process, one job after another: each killed job goes back
    from its last save and finishes on another child."""
    chaos.schedule()
    worker = chaos.deployment.start_worker("-c", "4")
    store = chaos.deployment.store()
    hit: dict[int, str] = {}  # job id: the run killed
    wanted = max(10, chaos.jobs // 15)
    while len(hit) < wanted:
        target = wait_until(lambda: running_job_in(store, set(hit), pool_children(worker))
                            or chaos.ended() == chaos.jobs, "a running job to kill")  # fmt: skip
        if target is True:  # all done
            break
        job_id, pid = target
        kill(pid)
        row = store.get(job_id)
        if row.status is Status.RUNNING and row.pid == pid and row.run_id:  # killed mid-job
            hit[job_id] = row.run_id
        time.sleep(KILL_EVERY)
    verdict = chaos.check("pool child SIGKILLed", timeout=60 + chaos.jobs)
    assert len(hit) >= wanted, f"only {len(hit)} jobs were killed"
    endings = {
        job_id: next(a.outcome for a in store.attempts(job_id) if a.run_id == run_id)
        for job_id, run_id in hit.items()
    }  # a run whose last write was on its way when the kill came ended as it said
    killed = [job_id for job_id, ended in endings.items() if ended is AttemptOutcome.LOST]
    assert len(killed) >= wanted * 0.8, f"most kills came mid-job: {endings}"
    assert all(store.get(job_id).attempts >= 2 for job_id in killed), "every killed job ran again"
    assert verdict.resumed >= len(killed)


def test_whole_worker_sigkilled_mid_job_and_reconcile_recovers(chaos: Chaos) -> None:
    """SIGKILL a worker and its pool while jobs run, twice; reconcile gives the silent runs'
    jobs back and a new worker finishes everything."""
    chaos.schedule()
    chaos.reconcile_every(1.0)
    for share in (1 / 3, 2 / 3):
        worker = chaos.deployment.start_worker("-c", "4")
        chaos.midway(share)
        worker.kill()
    chaos.deployment.start_worker("-c", "4")
    verdict = chaos.check("whole worker SIGKILLed", timeout=60 + chaos.jobs)
    assert verdict.resumed >= 2


def test_warm_then_cold_shutdown_during_a_batch(chaos: Chaos) -> None:
    """SIGTERM the worker (warm shutdown: running jobs stop with their state saved), start it
    again; then SIGTERM twice within the grace period, and SIGQUIT (cold shutdowns)."""
    chaos.schedule()
    chaos.reconcile_every(1.0)
    shutdowns = [(SIGTERM,), (SIGTERM, SIGTERM), (SIGTERM, SIGQUIT)]
    for number, signals in enumerate(shutdowns, start=1):
        worker = chaos.deployment.start_worker("-c", "4")
        chaos.midway(number / 4)
        for signum in signals:
            worker.signal(signum)
            time.sleep(0.2)  # the second signal lands inside the grace period, not after it
        worker.process.wait(timeout=60)
    chaos.deployment.start_worker("-c", "4")
    verdict = chaos.check("warm and cold shutdown", timeout=60 + chaos.jobs)
    assert verdict.resumed >= 3
