"""Operating a sweep with real workers: reconcile after a SIGKILL or a lost broker,
cancel and requeue observed through `dbdict show` and the files in the exproot."""

from __future__ import annotations

import json
import signal
import sqlite3
from collections import Counter
from typing import Any

import pytest
import redis

from dbdict_celery.experiment.status import Status
from tests.conftest import read_conf, wait_until
from tests.deployments import Deployment, broker_of, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration


def show(deployment: Deployment, job_id: int) -> dict[str, Any]:
    done = deployment.dbdict("show", "--json", str(job_id))
    assert done.returncode == 0, done.stderr
    record: dict[str, Any] = json.loads(done.stdout)
    return record


def reconciled(deployment: Deployment, *args: str) -> str:
    done = deployment.dbdict("reconcile", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_job_of_a_sigkilled_worker_is_put_back_and_finished_by_another(
    deployment: Deployment,
) -> None:
    (job,) = scheduled(deployment, "examples.count.experiment", "target=120", "interval=0.05")
    store = deployment.store()
    worker = deployment.start_worker("-c", "1", DBDICT_HEARTBEAT="1")
    wait_until(lambda: store.get(job.id).state.get("count", 0) >= 5, "5 saved steps")
    worker.kill()  # the whole worker, pool included: a node gone
    assert store.get(job.id).status == Status.RUNNING

    def flagged() -> bool:
        status = json.loads(deployment.dbdict("status", "--json", "--stale-after", "2").stdout)
        return bool(status["running"]) and status["running"][0]["stale"]

    wait_until(flagged, "status to flag the silent job as stale")
    # a silence of seconds is not stale by a 2-minute measure, however loaded the machine
    assert "nothing to repair" in reconciled(deployment, "--stale-after", "120"), "not stale yet"
    wait_until(lambda: "lost its worker" in reconciled(deployment, "--stale-after", "5"),
               "reconcile to find the job stale", timeout=60)  # fmt: skip
    released = store.get(job.id)
    assert (released.status, released.priority, released.attempts) == (Status.START, 2.0, 1)
    assert "nothing to repair" in reconciled(deployment, "--stale-after", "5"), "idempotent"
    deployment.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=60)
    done = store.get(job.id)
    assert (done.state["count"], done.state["runs"], done.attempts) == (120, 2, 2)
    steps = (deployment.job_files(job.id) / "stdout").read_text().splitlines()
    assert steps == [f"step {n}" for n in range(1, 121)], "resumed from the last save"
    assert "nothing to repair" in reconciled(deployment, "--stale-after", "5")


def test_lost_messages_are_sent_again_exactly_once_each(deployment: Deployment) -> None:
    marks = deployment.cwd / "marks"
    scheduled(deployment, "tests.experiments.mark", "n=range(50)", f"marks='{marks}'")
    _lose_every_message(deployment)
    first = reconciled(deployment)
    assert "50 jobs: " in first
    assert "were START without a message: sent again" in first
    assert "nothing to repair" in reconciled(deployment), "the messages are there now"
    deployment.start_worker("-c", "2")
    wait_for_statuses(deployment.store(), Status.DONE, timeout=120)
    assert Counter(marks.read_text().splitlines()) == Counter(str(n) for n in range(50))


def test_jobs_scheduled_without_messages_are_sent_by_reconcile(deployment: Deployment) -> None:
    scheduled(deployment, "--no-enqueue", "examples.count.experiment", "target=range(1, 4)",
              "interval=0.01")  # fmt: skip
    assert "3 jobs: 1, 2, 3 were START without a message" in reconciled(deployment)
    deployment.start_worker("-c", "1")
    wait_for_statuses(deployment.store(), Status.DONE)


def test_cancel_and_requeue_seen_through_show_and_the_files(deployment: Deployment) -> None:
    scheduled(deployment, "examples.count.experiment", "target=1000", "interval=0.1")
    scheduled(deployment, "examples.count.experiment", "target=5", "interval=0.01")
    scheduled(deployment, "tests.experiments.flaky")
    running, waiting, flaky = (job.id for job in deployment.store().jobs())
    deployment.start_worker("-c", "1", DBDICT_HEARTBEAT="1")
    store = deployment.store()
    wait_until(lambda: store.get(running).state.get("count", 0) >= 2, "the first job to run")

    assert deployment.dbdict("cancel", str(waiting)).stdout.strip() == f"cancelled job {waiting}"
    cancelled_waiting = show(deployment, waiting)
    assert (cancelled_waiting["status"], cancelled_waiting["attempts"]) == ("CANCELLED", 0)
    assert not deployment.job_files(waiting).exists(), "a cancelled START job never runs"

    asked = deployment.dbdict("cancel", str(running))
    assert asked.stdout.strip() == f"asked running job {running} to stop"
    wait_until(lambda: show(deployment, running)["status"] == "CANCELLED", "the stop", timeout=30)
    stopped = show(deployment, running)
    current = read_conf(deployment.job_files(running) / "current.conf")
    assert current["count"] == stopped["state"]["count"] >= 2

    wait_until(lambda: show(deployment, flaky)["status"] == "FAILED", "the flaky job to fail")
    failed = show(deployment, flaky)
    assert "RuntimeError: try 1 fails" in failed["error"]
    assert failed["state"]["tries"] == 1
    requeued = deployment.dbdict("requeue", "--status", "failed")
    assert requeued.stdout.strip() == f"requeued job {flaky}"
    wait_until(lambda: show(deployment, flaky)["status"] == "DONE", "the requeued job to finish")
    done = show(deployment, flaky)
    assert (done["state"]["tries"], done["state"]["result"], done["attempts"]) == (2, "ok", 2)
    assert read_conf(deployment.job_files(flaky) / "current.conf")["tries"] == 2
    assert show(deployment, waiting)["status"] == "CANCELLED", "untouched by the requeue"


def _lose_every_message(deployment: Deployment) -> None:
    """What a broker restart without persistence does."""
    if deployment.name == "embedded":
        with sqlite3.connect(deployment.cwd / "home" / "broker.db") as broker:
            broker.execute("DELETE FROM kombu_message")
    else:
        redis.Redis.from_url(broker_of(deployment)).flushdb()


def test_sigterm_during_watch_ends_it(deployment: Deployment) -> None:
    from tests.conftest import start_dbdict

    watching = start_dbdict("reconcile", "--watch", "--interval", "0.5", cwd=deployment.cwd,
                            **deployment.env)  # fmt: skip
    wait_until(lambda: watching.poll() is None, "the watch to start")
    scheduled(deployment, "--no-enqueue", "examples.count.experiment", "target=1", "interval=0")
    store = deployment.store()
    wait_until(lambda: store.jobs()[0].task_id is not None, "the watch to send the job")
    watching.send_signal(signal.SIGTERM)
    out, err = watching.communicate(timeout=30)
    assert watching.returncode == 0, err
    assert "START without a message: sent again" in out


def test_the_reconcile_task_repairs_from_inside_a_worker(cluster: Deployment) -> None:
    """What Celery beat would do: send `dbdict_celery.reconcile` to the workers."""
    from celery import Celery

    from dbdict_celery.worker.app import QUEUE

    scheduled(cluster, "--no-enqueue", "examples.count.experiment", "target=range(1, 6)",
              "interval=0")  # fmt: skip
    worker = cluster.start_worker("-c", "1")
    table = cluster.store().path.table
    Celery(broker=broker_of(cluster)).send_task(
        "dbdict_celery.reconcile", args=(table,), queue=QUEUE
    )
    wait_for_statuses(cluster.store(), Status.DONE)
    assert "'resent': 5" in worker.text()
