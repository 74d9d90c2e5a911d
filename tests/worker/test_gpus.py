"""GPU slots under real workers, with fake devices: each job asking for K GPUs runs with K
of its worker's in CUDA_VISIBLE_DEVICES, never one another job has; a job asking for more
than any worker has waits unbooked, and says so, until a worker with as many starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled

pytestmark = pytest.mark.integration

FOUR = ["f0", "f1", "f2", "f3"]
EIGHT = [f"g{n}" for n in range(8)]


def _schedule(cluster: Deployment, gpus: int, *params: str) -> list[Job]:
    before = {job.id for job in cluster.store().jobs()}
    jobs = scheduled(cluster, "tests.experiments.on_gpus", *params, "--gpus", str(gpus))
    return [job for job in jobs if job.id not in before]


def _in_use(jobs: list[Job], moment: float) -> list[str]:
    """The devices the jobs held at `moment`, as each recorded (a device twice if two did)."""
    return [
        device
        for job in jobs
        if job.state["began"] <= moment <= job.state["ended"]
        for device in job.state["devices"].split(",")
    ]


def test_jobs_share_a_workers_gpus_without_ever_sharing_one(
    cluster: Deployment, tmp_path: Path
) -> None:
    store = cluster.store()
    locks = str(tmp_path / "gpu-locks")  # this test's devices alone
    ones = _schedule(cluster, 1, "seconds=1", "n=range(8)")
    twos = _schedule(cluster, 2, "seconds=1", "n=range(2)")
    (eight,) = _schedule(cluster, 8, "seconds=0.1")
    (cpu,) = _schedule(cluster, 0, "seconds=0.1", "cpu=1")
    gpu_worker = cluster.start_worker(
        "-c", "4", DBDICT_GPUS=",".join(FOUR), DBDICT_GPU_LOCKS=locks
    )  # w1-
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
    starts = [job.state["began"] for job in done]  # where the devices in use grow
    for moment in starts:
        held = _in_use(done, moment)
        assert len(held) == len(set(held)), f"a device used by two jobs at once: {held}"
        assert len(held) <= len(FOUR)
    assert max(len(_in_use(done, moment)) for moment in starts) > 1, "they ran side by side"
    (cpu_run,) = store.attempts(cpu.id)
    if (cpu_run.worker or "").startswith("w1-"):
        assert store.get(cpu.id).state["devices"] == "", "a CPU job on a GPU worker sees none"
        assert cpu_run.devices == ""

    waiting = store.get(eight.id)
    assert waiting.status is Status.START
    assert waiting.attempts == 0, "not booked by a worker without 8 GPUs"
    status = cluster.dbdict("status")
    assert "need 8 GPUs" in status.stdout, status.stdout
    assert gpu_worker.process.poll() is None

    cluster.start_worker("-c", "1", DBDICT_GPUS=",".join(EIGHT), DBDICT_GPU_LOCKS=locks)
    wait_until(lambda: store.get(eight.id).status is Status.DONE, "the 8-GPU job to run", 60)
    assert sorted(store.get(eight.id).state["devices"].split(",")) == sorted(EIGHT)


@pytest.mark.parametrize(
    ("options", "isolation"), [(["-P", "threads"], "process"), (["-c", "1"], "inline")]
)
def test_a_worker_given_gpus_refuses_to_share_a_process_between_jobs(
    cluster: Deployment, options: list[str], isolation: str
) -> None:
    """GPU locks belong to processes: a threads pool or inline isolation is refused at
    start, in one line."""
    with pytest.raises(AssertionError, match="DBDICT_GPUS needs each job in a process"):
        cluster.start_worker(*options, DBDICT_GPUS="0,1", DBDICT_ISOLATION=isolation)
