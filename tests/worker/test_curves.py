"""A job's learning curve under a real worker: each step exactly once, from the run that
owned the job when it reported it, however often its runs are killed or stopped."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from dbdict_celery.experiment.status import Status
from tests.conftest import wait_until
from tests.deployments import Deployment, scheduled, wait_for_statuses


def test_a_curve_survives_a_killed_pool_process_and_a_worker_shutdown_exactly_once(
    deployment: Deployment, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    (job,) = scheduled(deployment, "tests.experiments.curve", "steps=100", f"marks='{marks}'",
                       "pauses='37 64'")  # fmt: skip
    store = deployment.store()
    first = deployment.start_worker("-c", "1")

    wait_until(lambda: (marks / "at-37").exists(), "the first run to reach step 37", timeout=90)
    running = store.get(job.id)
    assert running.state["next"] == 31, "its last save was at step 30"
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)  # its pool process, the experiment's supervisor

    wait_until(lambda: (marks / "at-64").exists(), "the second run to reach step 64", timeout=120)
    first.signal(signal.SIGTERM)  # a warm shutdown: the run saves at step 64 and stops
    assert first.process.wait(timeout=60) == 0, first.text()
    assert store.get(job.id).status is Status.START
    deployment.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=120)

    shown = deployment.dbdict("metrics", str(job.id), "--key", "loss", "--json")
    assert shown.returncode == 0, shown.stderr
    points = json.loads(shown.stdout)
    assert [point["step"] for point in points] == list(range(100)), "each step once"
    assert all(point["key"] == "loss" for point in points)
    reported_by = {point["step"]: int(point["value"]) // 1000 for point in points}
    assert reported_by == {
        **dict.fromkeys(range(31), 1),  # saved at step 30 by the first run
        **dict.fromkeys(range(31, 65), 2),  # 31 to 37 reported again after the kill
        **dict.fromkeys(range(65, 100), 3),  # after the shutdown, from its save at step 64
    }
    assert all(point["run"] == reported_by[point["step"]] for point in points), (
        "each point belongs to the run (attempt) that reported it, which owned the job"
    )
    assert [a.outcome.value for a in store.attempts(job.id) if a.outcome] == [
        "lost", "incomplete", "done"
    ]  # fmt: skip
