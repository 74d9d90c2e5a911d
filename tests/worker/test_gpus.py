"""GPU slots under real workers, with fake devices: each job asking for K GPUs runs with K
of its worker's in CUDA_VISIBLE_DEVICES, never one another job has; a job asking for more
than any worker has waits unbooked, and says so, until a worker with as many starts."""

from __future__ import annotations

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled

pytestmark = pytest.mark.integration

FOUR = ["f0", "f1", "f2", "f3"]
EIGHT = [f"g{n}" for n in range(8)]
SAMPLE = 0.2  # seconds between two samples of which devices are in use


def _schedule(cluster: Deployment, gpus: int, *params: str) -> list[Job]:
    before = {job.id for job in cluster.store().jobs()}
    jobs = scheduled(cluster, "tests.experiments.on_gpus", *params, "--gpus", str(gpus))
    return [job for job in jobs if job.id not in before]


def _in_use(jobs: list[Job]) -> list[list[str]]:
    """Samples, every SAMPLE seconds, of the devices the jobs held (as each recorded)."""
    start = min(job.state["began"] for job in jobs)
    end = max(job.state["ended"] for job in jobs)
    samples = []
    moment = start
    while moment <= end:
        samples.append([
            device
            for job in jobs
            if job.state["began"] <= moment <= job.state["ended"]
            for device in job.state["devices"].split(",")
        ])  # fmt: skip
        moment += SAMPLE
    return samples


def test_jobs_share_a_workers_gpus_without_ever_sharing_one(cluster: Deployment) -> None:
    store = cluster.store()
    ones = _schedule(cluster, 1, "seconds=1", "n=range(8)")
    twos = _schedule(cluster, 2, "seconds=1", "n=range(2)")
    (eight,) = _schedule(cluster, 8, "seconds=0.1")
    (cpu,) = _schedule(cluster, 0, "seconds=0.1", "cpu=1")
    gpu_worker = cluster.start_worker("-c", "4", DBDICT_GPUS=",".join(FOUR))  # named w1-...
    cluster.start_worker("-c", "1")
    ran = [*ones, *twos]
    wait_until(lambda: all(store.get(job.id).status is Status.DONE for job in [*ran, cpu]),
               "the jobs of 1 and 2 GPUs, and the CPU job, to end", timeout=120)  # fmt: skip
    done = [store.get(job.id) for job in ran]
    for job in done:
        given = job.state["devices"].split(",")
        assert len(given) == len(set(given)) == (job.limits or {})["gpus"]
        assert set(given) <= set(FOUR)
        (attempt,) = store.attempts(job.id)
        assert attempt.devices == job.state["devices"], "the attempt records which"
        assert (attempt.worker or "").startswith("w1-"), "the GPU worker ran it"
    for sample in _in_use(done):
        assert len(sample) == len(set(sample)), f"a device used by two jobs at once: {sample}"
        assert len(sample) <= len(FOUR)
    assert max(len(sample) for sample in _in_use(done)) > 1, "the jobs ran side by side"
    ended_cpu = store.get(cpu.id)
    assert ended_cpu.state["devices"] in ("", None), "a CPU job sees no GPU"

    waiting = store.get(eight.id)
    assert waiting.status is Status.START
    assert waiting.attempts == 0, "not booked by a worker without 8 GPUs"
    status = cluster.dbdict("status")
    assert "need 8 GPUs" in status.stdout, status.stdout
    assert gpu_worker.process.poll() is None

    cluster.start_worker("-c", "1", DBDICT_GPUS=",".join(EIGHT))
    wait_until(lambda: store.get(eight.id).status is Status.DONE, "the 8-GPU job to run", 60)
    assert sorted(store.get(eight.id).state["devices"].split(",")) == sorted(EIGHT)
