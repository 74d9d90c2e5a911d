"""`schedule --max-running N` under real workers: 20 jobs capped at 2 over 4 workers of 2
processes each, one worker SIGKILLed mid-run: never more than 2 RUNNING, all 20 DONE,
with reconcile run once, for the dead worker's job: the group wakes itself."""

from __future__ import annotations

import json
import threading
import time

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

CAP = 2
SAMPLE = 0.2  # seconds between two counts of the RUNNING jobs
STALE_AFTER = "6"  # seconds: the killed worker's job is put back this soon


class _Sampler(threading.Thread):
    """Counts the RUNNING jobs of a table every SAMPLE seconds, until stopped."""

    def __init__(self, location: str) -> None:
        super().__init__(daemon=True)
        self.store = JobStore.open(location)
        self.counts: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.counts.append(self.store.counts()[Status.RUNNING])
            time.sleep(SAMPLE)


def test_a_capped_sweep_keeps_its_cap_through_a_worker_death(cluster: Deployment) -> None:
    store = cluster.store()
    jobs = scheduled(cluster, "tests.experiments.quiet", "seconds=1", "n=range(20)",
                     "--max-running", str(CAP))  # fmt: skip
    assert {job.max_running for job in jobs} == {CAP}
    assert len({job.run_group for job in jobs}) == 1, "one group: the sweep"
    workers = [
        cluster.start_worker("-c", "2", DBDICT_STALE_AFTER=STALE_AFTER, DBDICT_HEARTBEAT="1")
        for _ in range(4)
    ]
    sampler = _Sampler(cluster.location)
    sampler.start()
    try:
        running = wait_until(lambda: store.jobs([Status.RUNNING]), "a job to run", timeout=60)
        (attempt,) = store.attempts(running[0].id)
        number = int((attempt.worker or "").partition("-")[0].removeprefix("w"))
        workers[number - 1].kill()  # mid-run: its job stays RUNNING until reconcile
        victims = {  # the dead worker's runs: one, or two
            job.id
            for job in store.jobs([Status.RUNNING])
            if (store.attempts(job.id)[-1].worker or "").startswith(f"w{number}-")
        }
        wait_until(lambda: victims <= {job.id for job in store.stale(float(STALE_AFTER))},
                   "its runs to go stale", 60)  # fmt: skip
        reconciled = cluster.dbdict("reconcile", "--stale-after", STALE_AFTER, "--json")
        requeued = json.loads(reconciled.stdout)["requeued"]
        assert set(requeued) == victims, reconciled.stdout
        wait_for_statuses(store, Status.DONE, timeout=240)  # the runs that end wake the rest
    finally:
        sampler.done.set()
        sampler.join(timeout=10)
    assert max(sampler.counts) <= CAP, f"RUNNING counts sampled: {sampler.counts}"
    assert CAP in sampler.counts, "the cap was used"
    for job_id in requeued:
        endings = [a.outcome.value if a.outcome else None for a in store.attempts(job_id)]
        assert endings == ["lost", "done"], f"job {job_id}: {endings}"
    assert len(store.jobs([Status.DONE])) == 20
