"""Experiments that misbehave, under real `celery -A dbdict_celery worker` processes: each
runs in a supervised process of its own, so it can be stopped, is seen dying at once,
leaves no process or working folder behind, may use multiprocessing, and runs the code
it was booked against."""

from __future__ import annotations

import itertools
import os
import signal
import tempfile
import time
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.leftovers import workdir_prefix
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

GRACE = "2"


def _endings(store: JobStore, job_id: int) -> list[tuple[str | None, str | None]]:
    return [(a.outcome.value if a.outcome else None, a.reason) for a in store.attempts(job_id)]


def _saved(store: JobStore, job_id: int, key: str) -> Job:
    """The job once it runs and has saved `key` (its experiment's pid, its children...)."""
    found: Job = wait_until(
        lambda: (job := store.get(job_id)).status is Status.RUNNING and key in job.state and job,
        f"job {job_id} to save {key}",
        timeout=60,
    )
    return found


def _running(pids: list[int]) -> list[int]:
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _none_running(pids: list[int], what: str) -> None:
    wait_until(lambda: not _running(pids), what, timeout=20)


def test_a_job_that_never_calls_switch_is_cancelled_and_killed_with_its_children(
    deployment: Deployment,
) -> None:
    """`dbdict cancel` of a busy loop: CANCELLED once the grace period is over, its last
    save kept, its attempt ending killed after the grace period, its process gone."""
    (job,) = scheduled(deployment, "tests.experiments.busy")
    store = deployment.store()
    deployment.start_worker("-c", "1", DBDICT_GRACE=GRACE, DBDICT_HEARTBEAT="1")
    running = _saved(store, job.id, "pid")
    asked = time.monotonic()
    assert deployment.dbdict("cancel", str(job.id)).returncode == 0
    wait_for_statuses(store, Status.CANCELLED, timeout=60)
    assert time.monotonic() - asked < 30, "stopped by the grace period, not by the job's end"
    cancelled = store.get(job.id)
    assert cancelled.state["pid"] == running.state["pid"], "its last save is kept"
    assert _endings(store, job.id) == [("cancelled", "killed after the grace period")]
    _none_running([running.state["pid"]], "the experiment process to be gone")


def test_a_warm_shutdown_kills_a_job_that_ignores_it_and_no_child_outlives_it(
    cluster: Deployment,
) -> None:
    (job,) = scheduled(cluster, "tests.experiments.spawns")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_GRACE=GRACE)
    running = _saved(store, job.id, "children")
    children = list(running.state["children"])
    assert len(_running(children)) == 2
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=60) == 0, worker.text()
    stopped = store.get(job.id)
    assert (stopped.status, stopped.priority) == (Status.START, 2.0)
    assert _endings(store, job.id) == [("incomplete", "killed after the grace period")]
    _none_running([running.state["pid"], *children], "the job's processes to be gone")


def test_the_children_of_a_cancelled_job_are_killed_with_it(cluster: Deployment) -> None:
    (job,) = scheduled(cluster, "tests.experiments.spawns")
    store = cluster.store()
    cluster.start_worker("-c", "1", DBDICT_GRACE=GRACE)
    children = list(_saved(store, job.id, "children").state["children"])
    assert cluster.dbdict("cancel", str(job.id)).returncode == 0
    wait_for_statuses(store, Status.CANCELLED, timeout=60)
    _none_running(children, "the cancelled job's children to be gone")


def test_the_children_a_finished_job_left_running_are_killed(cluster: Deployment) -> None:
    (job,) = scheduled(cluster, "tests.experiments.spawns", "seconds=0")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=60)
    _none_running(list(store.get(job.id).state["children"]), "the children to be gone")
    assert "left 2 process(es) running: killed" in worker.text()


@pytest.mark.parametrize("how", ["experiment", "worker"])
def test_killing_the_experiment_or_its_whole_worker_leaves_no_child(
    cluster: Deployment, how: str
) -> None:
    """SIGKILL of the experiment process: its supervisor sees it at once (no reconcile, no
    heartbeat), kills what it started and puts the job back. SIGKILL of the worker and its
    pool: the experiment dies with its supervisor, and a worker starting here later kills
    what it had started."""
    (job,) = scheduled(cluster, "tests.experiments.spawns")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_STALE_AFTER="600")
    running = _saved(store, job.id, "children")
    children = list(running.state["children"])
    if how == "experiment":
        os.kill(running.state["pid"], signal.SIGKILL)
        wait_until(lambda: store.get(job.id).attempts >= 2, "the job to run again", timeout=30)
        assert _endings(store, job.id)[0] == ("lost", "process died")
    else:
        os.killpg(worker.process.pid, signal.SIGKILL)  # the worker and its pool, not the job's
        _none_running([running.state["pid"]], "the experiment process to die with its pool")
        cluster.start_worker("-c", "1")
    _none_running(children, "the killed job's children to be gone")


def test_an_experiment_process_that_dies_is_seen_at_once_and_counted_as_a_death(
    cluster: Deployment,
) -> None:
    """os._exit: back to START from its last save at once; FAILED after LOST_RUNS deaths,
    naming how its process ended."""
    (job,) = scheduled(cluster, "tests.experiments.dies", "deaths=99")
    store = cluster.store()
    cluster.start_worker("-c", "1", DBDICT_HEARTBEAT="30", DBDICT_STALE_AFTER="600")
    wait_for_statuses(store, Status.FAILED, timeout=60)
    failed = store.get(job.id)
    assert failed.attempts == 3
    assert "its process died (exit code 1)" in (failed.error or "")


def test_a_killed_cancelled_job_ends_cancelled_not_running(cluster: Deployment) -> None:
    (job,) = scheduled(cluster, "tests.experiments.busy")
    store = cluster.store()
    cluster.start_worker("-c", "1", DBDICT_GRACE="120", DBDICT_STALE_AFTER="600")
    running = _saved(store, job.id, "pid")
    assert cluster.dbdict("cancel", str(job.id)).returncode == 0
    wait_until(lambda: store.get(job.id).cancel_requested, "the cancel to be recorded")
    os.kill(running.state["pid"], signal.SIGKILL)
    wait_for_statuses(store, Status.CANCELLED, timeout=30)


@pytest.mark.parametrize("kind", ["fork", "spawn", "executor", "joblib", "loader"])
def test_multiprocessing_works_in_an_experiment_under_a_worker(
    cluster: Deployment, kind: str
) -> None:
    (job,) = scheduled(cluster, "tests.experiments.parallel", f"kind={kind}")
    store = cluster.store()
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, Status.FAILED, timeout=120)
    done = store.get(job.id)
    assert (done.status, done.state.get("result")) == (Status.DONE, 285), done.error


VERSION_1 = """
def experiment(state, channel):
    state.version = 1
"""
VERSION_2 = """
def experiment(state, channel):
    state.version = 2


def added(state, channel):
    state.version = "added"
"""


def test_a_job_runs_the_code_of_its_experiment_as_it_is_when_booked(cluster: Deployment) -> None:
    module = cluster.cwd / "changing.py"
    module.write_text(VERSION_1, encoding="utf-8")
    (first,) = scheduled(cluster, "changing.experiment", "n=1")
    store = cluster.store()
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE)
    module.write_text(VERSION_2, encoding="utf-8")
    first, second = scheduled(cluster, "changing.experiment", "n=2")
    first, second, third = scheduled(cluster, "changing.added")
    wait_for_statuses(store, Status.DONE)
    versions = [store.get(job.id).state["version"] for job in (first, second, third)]
    assert versions == [1, 2, "added"]


def test_an_experiment_missing_from_its_module_here_is_given_back(cluster: Deployment) -> None:
    module = cluster.cwd / "shrinking.py"
    module.write_text(VERSION_2, encoding="utf-8")
    (job,) = scheduled(cluster, "shrinking.added")
    module.write_text(VERSION_1, encoding="utf-8")  # this worker's copy lacks it
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_RETRY_DELAY="600")
    wait_until(lambda: "cannot be found" in worker.text(), "the job to be given back")
    given_back = store.get(job.id)
    assert (given_back.status, given_back.attempts) == (Status.START, 0)
    assert _endings(store, job.id)[0][0] == "given back"


def _workdirs(table: str) -> list[str]:
    """The working folders of runs of jobs of `table` (`dbdict-run-HOST-PROCESS-TABLE-ID-...`)."""
    return [
        name
        for name in os.listdir(tempfile.gettempdir())
        if name.startswith("dbdict-run-") and name.split("-")[4] == table
    ]


def test_no_working_folder_is_left_by_a_killed_run(cluster: Deployment) -> None:
    """A run's folder goes when its process dies or is killed; one left by a supervisor
    killed outright is removed when a worker starts."""
    scheduled(cluster, "tests.experiments.dies", "deaths=1")
    _, busy = scheduled(cluster, "tests.experiments.busy")
    store = cluster.store()
    worker = cluster.start_worker("-c", "2", DBDICT_GRACE="1")
    running = _saved(store, busy.id, "pid")
    assert cluster.dbdict("cancel", str(busy.id)).returncode == 0
    wait_for_statuses(store, Status.DONE, Status.CANCELLED, timeout=60)
    assert running.workdir is not None
    wait_until(lambda: not _workdirs(store.path.table), "the runs' folders to be removed")
    leftover = Path(tempfile.gettempdir()) / f"{workdir_prefix(worker.process.pid)}gone-1-x"
    leftover.mkdir()
    worker.kill()
    cluster.start_worker("-c", "1")
    assert not leftover.exists()


def test_a_job_returning_incomplete_unasked_is_sent_again_later_and_later(
    cluster: Deployment,
) -> None:
    (job,) = scheduled(cluster, "tests.experiments.idle")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1")
    runs = wait_until(lambda: len(a := store.attempts(job.id)) >= 4 and a, "4 runs", timeout=60)
    gaps = [
        (later.started_at - earlier.finished_at).total_seconds()
        for earlier, later in itertools.pairwise(runs)
        if earlier.finished_at is not None
    ]
    assert gaps[0] >= 0.5
    assert gaps[2] > gaps[0] * 2, gaps
    assert "returned INCOMPLETE (True) without saving anything" in worker.text()
    assert cluster.dbdict("cancel", str(job.id)).returncode == 0
