"""`celery -A dbdict_celery beat` reconciles the table of DBDICT_DB with no config file."""

from __future__ import annotations

import subprocess
from pathlib import Path

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


@pytest.mark.parametrize("task", ["reconcile", "drive_studies"])
def test_beats_tasks_find_nothing_to_do_before_the_table_exists(
    task: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker started with -B before anything was scheduled: its looks find no table,
    which is no error (each look would log a traceback)."""
    from dbdict_celery.search.detached import drive_studies
    from dbdict_celery.worker.tasks import reconcile_table

    monkeypatch.setenv("DBDICT_DB", f"sqlite:///{tmp_path / 'none-yet.db'}")
    looked = {"reconcile": reconcile_table, "drive_studies": drive_studies}[task].run()
    assert looked == {}
