"""`schedule --max-running N` under real workers: 20 jobs capped at 2 over 4 workers of 2
processes each, one worker SIGKILLed mid-run: never more than 2 RUNNING, all 20 DONE."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.conftest import DBDICT, wait_until
from tests.deployments import Deployment, environment, kill_session, scheduled, wait_for_statuses

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
    reconcile = subprocess.Popen(
        [DBDICT, "reconcile", "--watch", "--interval", "1", "--stale-after", STALE_AFTER],
        cwd=cluster.cwd, env=environment(cluster.env),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        running = wait_until(lambda: store.jobs([Status.RUNNING]), "a job to run", timeout=60)
        (attempt,) = store.attempts(running[0].id)
        number = int((attempt.worker or "").partition("-")[0].removeprefix("w"))
        workers[number - 1].kill()  # mid-run: its job stays RUNNING until reconcile
        wait_for_statuses(store, Status.DONE, timeout=240)
    finally:
        sampler.done.set()
        sampler.join(timeout=10)
        kill_session(reconcile)
    assert max(sampler.counts) <= CAP, f"RUNNING counts sampled: {sampler.counts}"
    assert CAP in sampler.counts, "the cap was used"
    lost = store.attempts(running[0].id)
    assert [a.outcome.value if a.outcome else None for a in lost] == ["lost", "done"]
    assert len(store.jobs([Status.DONE])) == 20
