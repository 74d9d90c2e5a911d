"""`celery -A dbdict_celery beat` reconciles the table of DBDICT_DB with no config file."""

from __future__ import annotations

import subprocess

import pytest

from dbdict_celery.experiment.status import Status
from tests.deployments import CELERY, Deployment, environment, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration


def test_beat_sends_the_jobs_no_message_was_sent_for(cluster: Deployment) -> None:
    jobs = scheduled(cluster, "--no-enqueue", "examples.count.experiment", "target=range(1, 4)")
    assert all(job.task_id is None for job in jobs), "nothing was sent"
    cluster.start_worker("-c", "1")
    beat = subprocess.Popen(
        [CELERY, "-A", "dbdict_celery", "beat", "-s", str(cluster.cwd / "beat-schedule")],
        cwd=cluster.cwd,
        env=environment(cluster.env, {"DBDICT_RECONCILE_INTERVAL": "1"}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_statuses(cluster.store(), Status.DONE, timeout=120)
    finally:
        beat.terminate()
        beat.wait(timeout=30)
    assert all(job.attempts == 1 for job in cluster.store().jobs()), "each ran once"
