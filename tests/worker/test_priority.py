"""`dbdict priority`: waiting jobs given a new priority run in its order on Redis, each once
(the message sent before is harmless); the embedded broker keeps its order, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import dbdict
from tests.deployments import Deployment, embedded, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration


def test_a_job_given_a_higher_priority_runs_first_and_once(
    cluster: Deployment, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    jobs = scheduled(cluster, "tests.experiments.mark", "n=range(6)", f"marks={marks}")
    last = max(jobs, key=lambda job: job.id)
    first = min(jobs, key=lambda job: job.id)
    raised = cluster.dbdict("priority", str(last.id), "5")
    assert raised.returncode == 0, raised.stderr
    assert raised.stdout.strip() == f"priority 5 for job {last.id}"
    lowered = cluster.dbdict("priority", "--where", f"n={first.params['n']}", "0")
    assert lowered.returncode == 0, lowered.stderr
    store = cluster.store()
    assert (store.get(last.id).priority, store.get(first.id).priority) == (5.0, 0.0)
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE)
    order = [int(line) for line in marks.read_text().split()]
    assert sorted(order) == sorted(job.params["n"] for job in jobs), "each ran once"
    assert order[0] == last.params["n"], "the raised job ran first"
    assert order[-1] == first.params["n"], "the lowered one ran last"
    again = cluster.dbdict("priority", str(last.id), "1")
    assert again.stdout.strip() == f"job {last.id} is DONE: only waiting jobs change"


def test_the_embedded_broker_changes_only_the_rows(tmp_path: Path) -> None:
    with embedded(tmp_path) as deployment:
        (job,) = scheduled(deployment, "tests.experiments.record", "value=1")
        done = deployment.dbdict("priority", str(job.id), "3")
        assert done.returncode == 0, done.stderr
        assert "only the rows changed" in done.stderr
        assert deployment.store().get(job.id).priority == 3.0


@pytest.mark.parametrize(
    ("args", "says"),
    [(["5"], "give job IDs, or --where"), (["1", "2", "high"], "'high' is not a valid float"),
     (["--where", "lr>", "1"], "lr>")],
)  # fmt: skip
def test_priority_refuses_a_malformed_command_in_one_line(
    tmp_path: Path, args: list[str], says: str
) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}/jobs"
    assert dbdict("schedule", "--db", db, "--no-enqueue", "examples.count.experiment", "target=2",
                  cwd=tmp_path).returncode == 0  # fmt: skip
    done = dbdict("priority", "--db", db, *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr.strip().splitlines()[-1], done.stderr
