"""Jobs run by real `celery -A dbdict_celery worker` processes, end to end.

Scheduled with the real `dbdict` command; each outcome checked in the row
and in the job's files in the exproot.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from celery import Celery
from celery.worker import WorkController

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE
from dbdict_celery.worker.enqueue import RUN_JOB
from tests.conftest import read_conf, wait_until
from tests.deployments import (
    CELERY,
    Deployment,
    broker_of,
    environment,
    redis_messages_waiting,
    scheduled,
    wait_for_statuses,
)

pytestmark = pytest.mark.integration


def test_a_grid_of_counting_jobs_runs_to_done(deployment: Deployment) -> None:
    scheduled(deployment, "examples.count.experiment", "target=range(3, 6)",
              "scale=choice(1, 2, 3)", "interval=0.01")  # fmt: skip
    store = deployment.store()
    jobs = store.jobs()
    assert len(jobs) == 9
    assert all(job.task_id for job in jobs), "each row names the message sent for it"
    deployment.start_worker("-c", "2")
    wait_for_statuses(store, Status.DONE)
    grid = set()
    for job in store.jobs():
        target, scale = job.params["target"], job.params["scale"]
        grid.add((target, scale))
        assert job.state["result"] == target * scale
        assert job.finished_at is not None
        files = deployment.job_files(job.id)
        assert read_conf(files / "current.conf")["result"] == target * scale
        assert (files / "stdout").read_text().splitlines() == [
            f"step {step}" for step in range(1, target + 1)
        ]
    assert grid == {(target, scale) for target in (3, 4, 5) for scale in (1, 2, 3)}


def test_duplicate_messages_run_a_job_once(
    cluster: Deployment,
    celery_app: Celery,
    celery_worker: WorkController,
    task_outcomes: list[str],
) -> None:
    """In-process worker: the first message runs the job, the two copies find it DONE."""
    marks = cluster.cwd / "marks"
    (job,) = scheduled(cluster, "tests.experiments.mark", "n=7", f"marks='{marks}'")
    table = cluster.store().path.table
    for task_id in (job.task_id, None):  # the same message again, then the task called again
        celery_app.send_task(RUN_JOB, args=(table, job.id), task_id=task_id, queue=QUEUE)
    wait_until(lambda: len(task_outcomes) == 3, "the three messages to be handled")
    assert sorted(task_outcomes) == ["DONE", "SKIPPED", "SKIPPED"]
    assert marks.read_text().splitlines() == ["7"]
    assert cluster.store().get(job.id).attempts == 1


def test_two_workers_run_each_of_200_jobs_exactly_once(cluster: Deployment) -> None:
    marks = cluster.cwd / "marks"
    scheduled(cluster, "tests.experiments.mark", "n=range(200)", f"marks='{marks}'")
    cluster.start_worker("-c", "2")
    cluster.start_worker("-c", "2")
    store = cluster.store()
    wait_for_statuses(store, Status.DONE, timeout=180)
    runs = Counter(marks.read_text().splitlines())
    assert runs == Counter(str(n) for n in range(200))
    assert {job.attempts for job in store.jobs()} == {1}
    assert len({job.host for job in store.jobs()}) == 1
    assert len({job.pid for job in store.jobs()}) > 2, "the jobs were spread over the pools"


def test_revoke_with_terminate_cancels_with_the_state_saved_and_requeue_resumes(
    cluster: Deployment,
) -> None:
    (job,) = scheduled(cluster, "examples.count.experiment", "target=40", "interval=0.5")
    store = cluster.store()
    cluster.start_worker("-c", "1", DBDICT_HEARTBEAT="600")  # the revoke must do it alone
    wait_until(lambda: store.get(job.id).status == Status.RUNNING, "the job to start")
    idle = cluster.start_worker("-c", "1")  # hears the revoke of a task it does not run
    control = Celery(broker=broker_of(cluster)).control
    wait_until(lambda: len(control.ping(timeout=1) or []) == 2, "both workers to listen")
    running = wait_until(lambda: _with_count(store, job.id, at_least=2), "2 saved steps")
    replies = control.revoke(running.task_id, terminate=True, signal="SIGTERM", reply=True,
                             timeout=10)  # fmt: skip
    assert len(replies or []) == 2, "each worker handled the revoke (and logged what it had to)"
    wait_for_statuses(store, Status.CANCELLED, timeout=30)
    assert "Failed to mark" not in idle.text(), "no result backend is by design, not an error"
    cancelled = store.get(job.id)
    assert running.state["count"] < cancelled.state["count"] <= running.state["count"] + 2, (
        "the experiment stopped at its next switch()"
    )
    files = cluster.job_files(job.id)
    assert read_conf(files / "current.conf")["count"] == cancelled.state["count"]

    requeued = cluster.dbdict("requeue", str(job.id))
    assert requeued.returncode == 0, requeued.stderr
    assert f"requeued job {job.id}" in requeued.stdout
    wait_for_statuses(store, Status.DONE, timeout=60)
    done = store.get(job.id)
    assert (done.state["count"], done.state["runs"], done.attempts) == (40, 2, 2)
    steps = (files / "stdout").read_text().splitlines()
    assert steps == [f"step {step}" for step in range(1, 41)], "resumed, not restarted"
    assert _endings(store, job.id) == [("cancelled", "revoke"), ("done", None)]


def test_sigterm_to_the_worker_stops_running_jobs_which_resume_on_a_new_worker(
    deployment: Deployment,
) -> None:
    scheduled(deployment, "examples.count.experiment", "target=range(150, 152)", "interval=0.1")
    store = deployment.store()
    worker = deployment.start_worker("-c", "2", DBDICT_GRACE="8")
    wait_until(lambda: all(_with_count(store, job.id, at_least=3) for job in store.jobs()),
               "both jobs to save 3 steps")  # fmt: skip
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=8) == 0, worker.text()
    for alarming in ("ERROR", "Traceback"):
        assert alarming not in worker.text(), "a warm shutdown is not an error"
    stopped = store.jobs()
    assert [(job.status, job.priority) for job in stopped] == [(Status.START, 2.0)] * 2
    assert all(0 < job.state["count"] < job.params["target"] for job in stopped)
    if deployment.name == "postgres-redis":
        assert redis_messages_waiting(broker_of(deployment)) == 2
    deployment.start_worker("-c", "2")
    wait_for_statuses(store, Status.DONE, timeout=60)
    for job in store.jobs():
        assert (job.state["count"], job.state["runs"]) == (job.params["target"], 2)
        steps = (deployment.job_files(job.id) / "stdout").read_text().splitlines()
        assert steps == [f"step {step}" for step in range(1, job.params["target"] + 1)]


def test_sigterm_to_a_pool_child_stops_its_job_which_runs_again(cluster: Deployment) -> None:
    (job,) = scheduled(cluster, "examples.count.experiment", "target=20", "interval=0.1")
    store = cluster.store()
    cluster.start_worker("-c", "1")
    running = wait_until(lambda: _with_count(store, job.id, at_least=2), "2 saved steps")
    assert running.pid is not None
    os.kill(running.pid, signal.SIGTERM)
    wait_for_statuses(store, Status.DONE, timeout=60)
    done = store.get(job.id)
    assert (done.state["count"], done.state["runs"], done.attempts) == (20, 2, 2)


def test_a_job_that_ignores_the_stop_is_killed_after_the_grace_and_resumes(
    cluster: Deployment,
) -> None:
    (job,) = scheduled(cluster, "tests.experiments.ignores_stop", "target=60", "interval=0.1")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_GRACE="1")
    wait_until(lambda: store.get(job.id).state.get("i", 0) >= 3, "3 saved steps")
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=20) == 0, worker.text()
    assert "did not stop within 1 s: killing it" in worker.text()
    released = store.get(job.id)
    assert (released.status, released.priority) == (Status.START, 2.0)
    assert 3 <= released.state["i"] < 60
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=60)
    done = store.get(job.id)
    assert (done.state["i"], done.state["runs"]) == (60, 2)
    assert _endings(store, job.id) == [
        ("incomplete", "killed after the grace period"),
        ("done", None),
    ]


def test_a_failing_job_is_retried_up_to_max_attempts(cluster: Deployment) -> None:
    scheduled(cluster, "tests.experiments.fail")
    store = cluster.store()
    worker = cluster.start_worker("-c", "1", DBDICT_MAX_ATTEMPTS="2")
    wait_until(lambda: worker.text().count("'FAILED'") == 2, "two failed runs")
    (job,) = store.jobs()
    assert (job.status, job.attempts) == (Status.FAILED, 2)
    assert "ValueError: the experiment broke on purpose" in (job.error or "")


def test_dbdict_cancel_stops_a_running_job_with_its_state_saved(deployment: Deployment) -> None:
    """On Redis the revoke stops it at once; on the embedded broker (no broadcast) the
    next heartbeat does."""
    (job,) = scheduled(deployment, "examples.count.experiment", "target=1000", "interval=0.1")
    store = deployment.store()
    deployment.start_worker("-c", "1", DBDICT_HEARTBEAT="1")
    wait_until(lambda: _with_count(store, job.id, at_least=2), "2 saved steps")
    done = deployment.dbdict("cancel", str(job.id))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"asked running job {job.id} to stop"
    wait_for_statuses(store, Status.CANCELLED, timeout=30)
    cancelled = store.get(job.id)
    assert 2 <= cancelled.state["count"] < 1000
    current = read_conf(deployment.job_files(job.id) / "current.conf")
    assert current["count"] == cancelled.state["count"]
    again = deployment.dbdict("cancel", str(job.id))
    assert again.stdout.strip() == f"job {job.id} is CANCELLED: nothing to cancel"


def test_dbdict_worker_runs_jobs_and_stops_on_sigterm(deployment: Deployment) -> None:
    scheduled(deployment, "examples.count.experiment", "target=3", "interval=0.01")
    worker = deployment.start_worker("-c", "1", via_dbdict=True)
    wait_for_statuses(deployment.store(), Status.DONE)
    worker.signal(signal.SIGTERM)
    assert worker.process.wait(timeout=30) == 0, worker.text()


def test_higher_priorities_run_first_on_redis_and_rabbitmq(any_broker: Deployment) -> None:
    for priority in ("1", "3", "2", "2.0"):  # 2.0: a restarted job's priority
        scheduled(any_broker, "--priority", priority, "examples.count.experiment",
                  "target=1", f"tag={priority}")  # fmt: skip
    any_broker.start_worker("-c", "1")
    store = any_broker.store()
    wait_for_statuses(store, Status.DONE)
    ran = sorted(store.jobs(), key=lambda job: (job.started_at, job.finished_at))
    assert [job.priority for job in ran] == [3.0, 2.0, 2.0, 1.0]


def test_a_message_for_a_table_this_worker_cannot_see_runs_nothing_and_is_kept(
    cluster: Deployment,
) -> None:
    app = Celery(broker=broker_of(cluster))
    app.send_task(RUN_JOB, args=("no_such_table", 1), queue=QUEUE)
    worker = cluster.start_worker("-c", "1")
    wait_until(lambda: "retry: Retry in" in worker.text(), "the message to be sent back")
    (said,) = [line for line in worker.text().splitlines() if "cannot be run here" in line]
    assert "ERROR" in said
    assert "there is no job table" in said
    assert "DBDICT_DB" in said
    assert "'SKIPPED'" not in worker.text(), "the message was not dropped"
    from sqlalchemy import inspect

    assert not inspect(cluster.store().engine).has_table("no_such_table"), "no table was made"


def test_a_worker_says_at_start_which_job_database_it_serves(cluster: Deployment) -> None:
    configured = cluster.start_worker("-c", "1")
    wait_until(lambda: "this worker runs jobs of the database postgresql://" in configured.text(),
               "the worker to name its database")  # fmt: skip
    unset = cluster.start_worker("-c", "1", DBDICT_DB="")
    wait_until(lambda: "DBDICT_DB is not set" in unset.text(), "the worker to warn")
    (said,) = [line for line in unset.text().splitlines() if "DBDICT_DB is not set" in line]
    assert "WARNING" in said
    assert "embedded database sqlite:///" in said


def _endings(store: JobStore, job_id: int) -> list[tuple[str | None, str | None]]:
    """How each run of a job ended, and why, as its attempts record it."""
    return [(a.outcome.value if a.outcome else None, a.reason) for a in store.attempts(job_id)]


def _with_count(store: JobStore, job_id: int, at_least: int) -> object:
    job = store.get(job_id)
    return job if job.status == Status.RUNNING and job.state.get("count", 0) >= at_least else None


def test_a_job_whose_process_dies_is_put_back_at_once_not_after_the_staleness_window(
    cluster: Deployment,
) -> None:
    """os._exit in the experiment: the worker knows at once; the job resumes from its last
    save, and one that always dies ends FAILED after 3 runs with the reason."""
    scheduled(cluster, "tests.experiments.dies", "deaths=1", "tag=once")
    scheduled(cluster, "tests.experiments.dies", "deaths=99", "tag=always")
    cluster.start_worker("-c", "1")  # DBDICT_STALE_AFTER is 300 s: reconcile plays no part
    store = cluster.store()
    wait_for_statuses(store, Status.DONE, Status.FAILED, timeout=120)
    once, always = store.jobs()
    assert (once.status, once.state["result"], once.state["runs"]) == (Status.DONE, "survived", 2)
    assert (always.status, always.attempts) == (Status.FAILED, 3)
    assert always.error is not None
    assert "its process died" in always.error
    assert _endings(store, always.id) == [("lost", "process died")] * 3
    assert _endings(store, once.id) == [("lost", "process died"), ("done", None)]


MYEXP = """
def experiment(state, channel):
    state.result = state.x * 2
"""


def test_the_celery_command_finds_experiments_where_it_was_started(cluster: Deployment) -> None:
    (cluster.cwd / "myexp.py").write_text(MYEXP, encoding="utf-8")
    scheduled(cluster, "myexp.experiment", "x=21")
    cluster.start_worker("-c", "1")  # `celery -A dbdict_celery worker`, in the folder of myexp
    store = cluster.store()
    wait_for_statuses(store, Status.DONE)
    assert store.jobs()[0].state["result"] == 42


def test_a_worker_that_cannot_import_the_experiment_gives_the_job_back_loudly(
    cluster: Deployment,
) -> None:
    (cluster.cwd / "myexp.py").write_text(MYEXP, encoding="utf-8")
    scheduled(cluster, "myexp.experiment", "x=21")
    elsewhere = cluster.cwd / "elsewhere"
    elsewhere.mkdir()
    worker = cluster.start_worker("-c", "1", cwd=elsewhere)
    wait_until(lambda: "cannot run on this worker" in worker.text(), "the worker to say so")
    (said,) = [line for line in worker.text().splitlines() if "cannot run on this worker" in line]
    assert "ERROR" in said
    assert "PYTHONPATH" in said
    (job,) = cluster.store().jobs()
    assert (job.status, job.attempts, job.error) == (Status.START, 0, None), "not the job's fault"
    assert job.exproot is None, "this worker's exproot is not imposed on the next worker"


@pytest.mark.parametrize(
    ("setting", "value"),
    [("DBDICT_GRACE", "soon"), ("DBDICT_DB", "mysql://db/jobs"), ("DBDICT_MAX_STATE_MB", "0")],
)
def test_a_worker_with_a_malformed_setting_refuses_to_start(
    tmp_path: Path, setting: str, value: str
) -> None:
    env = environment({"DBDICT_HOME": str(tmp_path / "home"), setting: value})
    done = subprocess.run(
        [CELERY, "-A", "dbdict_celery", "worker", "--loglevel", "INFO"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert "this worker cannot start" in done.stdout + done.stderr
    assert setting in done.stdout + done.stderr or "malformed table path" in done.stderr
