"""A job's limits under real workers: its time limit, its memory limit, its retries, and the
signals a scheduler sends ahead of its own time limit."""

from __future__ import annotations

import itertools
import os
import signal
from datetime import timedelta

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.process_tree import children
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

GRACE = 2.0
LIMIT = 5.0
SLACK = 15.0  # seconds a loaded machine may add to a run's end, past the limit and grace


def _endings(store: JobStore, job_id: int) -> list[tuple[str | None, str | None]]:
    return [(a.outcome.value if a.outcome else None, a.reason) for a in store.attempts(job_id)]


def _lasted(store: JobStore, job_id: int) -> timedelta:
    """How long the job's only run lasted, as the table's clock says."""
    (attempt,) = store.attempts(job_id)
    assert attempt.finished_at is not None
    return attempt.finished_at - attempt.started_at


def test_a_job_is_stopped_at_its_time_limit_whether_it_listens_or_not(
    deployment: Deployment,
) -> None:
    """A busy loop that never calls switch() and a job that switches every 0.1 s, each with
    --time-limit 5s: both FAILED by the limit plus the grace period, naming the limit; the
    polite one saved the step it was stopped at, the busy one kept its last save."""
    store = deployment.store()
    busy = scheduled(deployment, "tests.experiments.busy", "--time-limit", "5s")[0]
    (polite,) = (
        job
        for job in scheduled(
            deployment, "tests.experiments.steps", "steps=100000", "--time-limit", "5s"
        )
        if job.id != busy.id
    )
    deployment.start_worker("-c", "2", DBDICT_GRACE=str(GRACE), DBDICT_HEARTBEAT="1")
    wait_for_statuses(store, Status.FAILED, timeout=120)
    for job in (busy, polite):
        ended = store.get(job.id)
        assert "time limit 5s reached" in (ended.error or "")
        assert _endings(store, job.id) == [("failed", "time limit")]
        lasted = _lasted(store, job.id).total_seconds()
        assert LIMIT <= lasted < LIMIT + GRACE + SLACK, f"job {job.id} lasted {lasted:.1f} s"
    assert "killed after the grace period" in (store.get(busy.id).error or "")
    assert "pid" in store.get(busy.id).state, "its last save is kept"
    stopped = store.get(polite.id).state
    assert 0 < stopped["stopped_at"] == stopped["i"], "it saved at the stop"


def test_a_job_that_reaches_its_time_limit_may_resume_elsewhere(cluster: Deployment) -> None:
    """--on-time-limit requeue: the run stopped at its limit gives its job back to START,
    and the next runs resume from its save until one completes."""
    store = cluster.store()
    (job,) = scheduled(
        cluster,
        "tests.experiments.steps",
        "steps=80",
        "--time-limit",
        "5s",
        "--on-time-limit",
        "requeue",
    )
    cluster.start_worker("-c", "1", DBDICT_GRACE=str(GRACE))
    wait_for_statuses(store, Status.DONE, timeout=120)
    done = store.get(job.id)
    runs = int(done.state["runs"])
    assert runs >= 2
    assert done.state["result"] == 80
    assert 0 < done.state["stopped_at"] < 80, "the first run was stopped part way"
    assert _endings(store, job.id) == [("incomplete", "time limit")] * (runs - 1) + [("done", None)]


@pytest.mark.parametrize("where", ["self", "child"])
def test_a_job_past_its_memory_limit_fails_on_its_first_run(
    cluster: Deployment, where: str
) -> None:
    """A job whose processes (the experiment's own, or a child's) hold more than --memory:
    killed at once, FAILED naming the limit, not retried as a lost run."""
    store = cluster.store()
    (job,) = scheduled(
        cluster, "tests.experiments.hoards", "mb=2000", f"where={where}", "--memory", "300M"
    )
    (sentinel,) = (
        each
        for each in scheduled(cluster, "tests.experiments.record", "value=1", "--priority", "0")
        if each.id != job.id
    )
    cluster.start_worker("-c", "1")
    wait_until(
        lambda: store.get(sentinel.id).status is Status.DONE, "the job after it to run", timeout=120
    )
    failed = store.get(job.id)
    assert failed.status is Status.FAILED
    assert (failed.error or "").startswith("out of memory (limit 300M)")
    assert _endings(store, job.id) == [("failed", "out of memory")]
    assert _lasted(store, job.id).total_seconds() < 60, "killed before it ended by itself"


def test_a_failing_job_is_retried_after_a_growing_delay(cluster: Deployment) -> None:
    """--retries 3 --retry-backoff 1s, for a job raising ValueError twice: DONE on its third
    try, the second delay at least twice the backoff."""
    store = cluster.store()
    (job,) = scheduled(
        cluster,
        "tests.experiments.raises",
        "kind=ValueError",
        "failures=2",
        "--retries",
        "3",
        "--retry-backoff",
        "1s",
    )
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=120)
    attempts = store.attempts(job.id)
    assert [a.outcome.value if a.outcome else None for a in attempts] == [
        "failed",
        "failed",
        "done",
    ]
    assert all("ValueError: try" in (a.error or "") for a in attempts[:2])
    gaps = []
    for before, after in itertools.pairwise(attempts):
        assert before.finished_at is not None
        gaps.append((after.started_at - before.finished_at).total_seconds())
    assert gaps[0] >= 1.0, f"delays {gaps}"
    assert gaps[1] >= 2.0, f"delays {gaps}: doubled"
    assert store.get(job.id).state["tries"] == 3


def test_only_the_exceptions_named_are_retried(cluster: Deployment) -> None:
    """--retry-on OSError, for a job raising ValueError: FAILED on its first try; the same
    job raising OSError is retried."""
    store = cluster.store()
    jobs = scheduled(cluster, "tests.experiments.raises", "kind=choice('ValueError', 'OSError')",
                     "failures=1", "--retries", "3", "--retry-backoff", "0.1s",
                     "--retry-on", "OSError")  # fmt: skip
    (other,) = (job for job in jobs if job.params["kind"] == "ValueError")
    (retried,) = (job for job in jobs if job.params["kind"] == "OSError")
    cluster.start_worker("-c", "1")
    wait_until(
        lambda: store.get(retried.id).status is Status.DONE, "the OSError job to end", timeout=120
    )
    wait_until(lambda: store.get(other.id).status is Status.FAILED, "the other to fail", timeout=60)
    assert [a.outcome.value if a.outcome else None for a in store.attempts(other.id)] == ["failed"]
    assert len(store.attempts(retried.id)) == 2


def test_a_scheduler_signal_named_in_dbdict_stop_signals_stops_the_worker_cleanly(
    cluster: Deployment,
) -> None:
    """DBDICT_STOP_SIGNALS=TERM,USR2 and a USR2 to the worker (Slurm's warning before its
    time limit): the running job saves and goes back to START, and the worker exits."""
    store = cluster.store()
    (job,) = scheduled(cluster, "tests.experiments.steps", "steps=100000")
    worker = cluster.start_worker("-c", "1", DBDICT_STOP_SIGNALS="TERM,USR2")
    wait_until(lambda: "runs" in store.get(job.id).state, "the job to run", timeout=60)
    worker.signal(signal.SIGUSR2)
    assert worker.process.wait(timeout=60) == 0, "a warm shutdown, not a death"
    stopped = store.get(job.id)
    assert stopped.status is Status.START
    assert stopped.state["stopped_at"] == stopped.state["i"] > 0
    assert _endings(store, job.id) == [("incomplete", "worker shutdown")]


def test_a_pool_process_ignores_a_scheduler_signal_between_jobs(cluster: Deployment) -> None:
    """Slurm may signal every process of the allocation: a pool process with no job goes on,
    and runs the next job."""
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_STOP_SIGNALS="TERM,USR2")
    (first,) = scheduled(cluster, "tests.experiments.record", "value=1")
    wait_for_statuses(store, Status.DONE, timeout=60)
    (pool,) = children(worker.process.pid)
    assert store.attempts(first.id)[0].pid == pool
    os.kill(pool, signal.SIGUSR2)
    (second,) = (job for job in scheduled(cluster, "tests.experiments.record", "value=2")
                 if job.id != first.id)  # fmt: skip
    wait_for_statuses(store, Status.DONE, timeout=60)
    assert store.attempts(second.id)[0].pid == pool, "the signalled pool process ran it"
