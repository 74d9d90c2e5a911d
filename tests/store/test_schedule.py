"""`dbdict schedule`: sweeps into the table in batches, one message per new job."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import redis

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.plan import plan
from dbdict_celery.store.store import JobStore
from tests.conftest import DBDICT, dbdict, dbdict_env
from tests.deployments import Deployment, broker_of, redis_messages_waiting

pytestmark = pytest.mark.integration

GRID = ["examples.count.experiment", "target=range(1, 4)", "scale=choice(1, 2)", "lr=0.5"]


def test_a_dry_run_prints_the_grid_and_changes_nothing(tmp_path: Path) -> None:
    done = dbdict("schedule", "--dry-run", *GRID, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 6
    assert "lr=0.5 scale=1 target=1" in lines
    assert "6 jobs would be scheduled (dry run: nothing changed)" in done.stderr
    assert not (tmp_path / "home").exists()


def test_random_draws_repeat_with_the_seed_that_was_reported(tmp_path: Path) -> None:
    args = ["--dry-run", "--samples", "4", "examples.count.experiment", "lr=loguniform(1e-4, 1)"]
    first = dbdict("schedule", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    seed = first.stderr.split("--seed ")[1].split()[0]
    again = dbdict("schedule", *args, "--seed", seed, cwd=tmp_path)
    assert again.stdout == first.stdout
    assert len(set(first.stdout.splitlines())) == 4


def test_a_sweep_is_inserted_once_and_force_brings_back_what_was_cancelled(
    location: str, tmp_path: Path
) -> None:
    first = dbdict("schedule", "--no-enqueue", "--db", location, *GRID, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "scheduled 6 jobs" in first.stdout
    store = JobStore.open(location)
    jobs = store.jobs()
    assert sorted((job.params["target"], job.params["scale"]) for job in jobs) == [
        (target, scale) for target in (1, 2, 3) for scale in (1, 2)
    ]
    assert {job.task_id for job in jobs} == {None}, "no message was sent"
    store.cancel([jobs[0].id])
    again = dbdict("schedule", "--no-enqueue", "--db", location, *GRID, cwd=tmp_path)
    assert "scheduled 0 jobs" in again.stdout
    assert "6 jobs were already there" in again.stdout
    hint = f"job {jobs[0].id} FAILED or CANCELLED: `dbdict requeue {jobs[0].id}` resumes"
    assert hint in again.stderr, "a job left as it is because it ended: how to run it again"
    forced = dbdict("schedule", "--no-enqueue", "--force", "--db", location, *GRID, cwd=tmp_path)
    assert "1 already there are to run again (--force)" in forced.stdout
    assert "5 jobs were already there" in forced.stdout
    assert store.counts()[Status.START] == 6


def test_batches_are_committed_as_the_sweep_streams(location: str) -> None:
    planned = plan("examples.count.experiment", ["a=range(50)", "b=range(50)"])
    batches = JobStore.open(location).insert(planned.jobs(), batch_size=1000)
    assert len(next(batches)) == 1000
    assert JobStore.open(location).counts()[Status.START] == 1000, "committed before the rest"
    assert sum(len(batch) for batch in batches) == 1500


def test_a_large_sweep_sends_one_message_per_job_over_one_connection(
    cluster: Deployment,
) -> None:
    client = redis.Redis.from_url(broker_of(cluster))  # the session's own server: no other client
    before = int(client.info("stats")["total_connections_received"])
    done = cluster.dbdict("schedule", "tests.experiments.mark", "n=range(3000)", "marks=x")
    assert done.returncode == 0, done.stderr
    assert "scheduled 3000 jobs" in done.stdout
    connections = int(client.info("stats")["total_connections_received"]) - before
    assert connections <= 3, f"{connections} connections to Redis for 3000 messages"
    assert redis_messages_waiting(broker_of(cluster)) == 3000
    jobs = cluster.store().jobs()
    assert len({job.task_id for job in jobs}) == 3000


def test_an_unreachable_broker_fails_before_anything_is_written(
    location: str, tmp_path: Path
) -> None:
    done = dbdict("schedule", "--db", location, *GRID, cwd=tmp_path,
                  DBDICT_BROKER="redis://:hunter2@127.0.0.1:1/0")  # fmt: skip
    assert done.returncode == 1
    assert "cannot reach the broker at redis://:**@127.0.0.1:1/0" in done.stderr
    assert "hunter2" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert JobStore.open(location).jobs() == []


@pytest.mark.parametrize(
    ("broker", "message", "code"),
    [
        ("foo://x", "unknown broker 'foo://x/'", 2),
        ("amqp://guest:Wr0ngPass@127.0.0.1:5672//", "ACCESS_REFUSED", 1),
    ],
)
def test_a_bad_broker_is_one_line_and_nothing_is_inserted(
    location: str, tmp_path: Path, broker: str, message: str, code: int
) -> None:
    done = dbdict("schedule", "--db", location, "examples.count.experiment", "target=2",
                  cwd=tmp_path, DBDICT_BROKER=broker)  # fmt: skip
    assert done.returncode == code
    (line,) = done.stderr.strip().splitlines()
    assert message in line
    assert "Wr0ngPass" not in line
    assert JobStore.open(location).jobs() == []


def test_a_parameter_that_is_not_utf8_is_one_line(location: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [DBDICT, "schedule", "--no-enqueue", "--db", location, "examples.count.experiment",
         b"name=caf\xe9"],
        cwd=tmp_path, env=dbdict_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert "cannot store 'name'" in line
    assert "not valid UTF-8" in line
