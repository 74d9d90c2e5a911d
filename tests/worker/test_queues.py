"""Routing jobs to some workers: `schedule --queue gpu` reaches only workers started with
`-Q gpu`, and every later message of those jobs (requeue, reconcile) goes there too."""

from __future__ import annotations

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

COUNT = "examples.count.experiment"


def test_jobs_scheduled_to_a_queue_run_only_on_its_workers(cluster: Deployment) -> None:
    (plain,) = scheduled(cluster, COUNT, "target=1", "interval=0")
    done = cluster.dbdict("schedule", "--queue", "gpu", COUNT, "target=range(2, 5)", "interval=0")
    assert done.returncode == 0, done.stderr
    store = cluster.store()
    gpu = [job for job in store.jobs() if job.id != plain.id]
    assert {job.queue for job in gpu} == {"gpu"}, "the row records its queue"
    assert store.get(plain.id).queue is None
    cancelled = gpu[0]
    assert cluster.dbdict("cancel", str(cancelled.id)).returncode == 0

    cluster.start_worker("-c", "1")  # the default queue only
    wait_until(lambda: store.get(plain.id).status is Status.DONE, "the plain job to run")
    assert {store.get(job.id).status for job in gpu[1:]} == {Status.START}, "not for it"

    assert cluster.dbdict("requeue", str(cancelled.id)).returncode == 0
    cluster.start_worker("-c", "1", "-Q", "gpu")
    wait_for_statuses(store, Status.DONE, timeout=120)
    assert store.get(cancelled.id).queue == "gpu", "requeued to its own queue"
    (late,) = [job for job in scheduled(cluster, "--no-enqueue", "--queue", "gpu", COUNT,
                                        "target=9") if job.params["target"] == 9]  # fmt: skip
    assert cluster.dbdict("cancel", str(late.id)).returncode == 0
    again = cluster.dbdict("schedule", "--force", "--no-enqueue", "--queue", "cpu", COUNT,
                           "target=9")  # fmt: skip
    assert again.returncode == 0, again.stderr
    moved = store.get(late.id)
    assert (moved.status, moved.queue) == (Status.START, "cpu"), "--force --queue moves it"
    listed = cluster.dbdict("list", "--columns", "id,queue", "--where", "queue=gpu")
    assert f"{len(gpu)} jobs" in listed.stderr, listed.stderr


def test_reconcile_sends_a_lost_message_to_the_jobs_queue_once(cluster: Deployment) -> None:
    done = cluster.dbdict("schedule", "--no-enqueue", "--queue", "gpu", COUNT, "target=2",
                          "interval=0")  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = cluster.dbdict("reconcile")
    assert "START without a message: sent again" in first.stdout, first.stdout
    again = cluster.dbdict("reconcile")
    assert "nothing to repair" in again.stdout, "the message waits in the gpu queue: seen there"
    store = cluster.store()
    cluster.start_worker("-c", "1", "-Q", "gpu")
    wait_for_statuses(store, Status.DONE, timeout=120)
    (job,) = store.jobs()
    assert job.attempts == 1
