"""A table's census, what the metrics endpoint and the dashboard's overview count, on SQLite
and Postgres: how long jobs have waited is counted from when they last went back to START."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

pytestmark = pytest.mark.integration  # each test runs on SQLite and on Postgres

WEEK = 7 * 24 * 3600.0


def _a_week_ago(store: JobStore) -> None:
    """Every job added, and every run's last heartbeat, a week ago."""
    t, week_ago = store.table, store.tables.ago(WEEK)
    with store.engine.begin() as connection:
        connection.execute(update(t).values(created_at=week_ago, heartbeat_at=week_ago))


def test_a_requeued_job_waits_from_its_requeue(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}, queue="gpu") for n in range(3)]))
    _a_week_ago(store)
    assert store.census().oldest_waiting["gpu"] >= WEEK - 60, "never run: since it was added"
    for _ in range(2):
        run = store.book()
        assert run is not None
        store.finish(run, Status.FAILED, error="boom")
    store.cancel([3])
    _a_week_ago(store)  # they failed a week ago
    store.requeue([1], from_statuses=[Status.FAILED])
    census = store.census()
    assert census.oldest_waiting["gpu"] < 3600, "requeued just now, not a week ago"
    assert census.jobs[(Status.START, "gpu")] == 1
    assert census.jobs[(Status.FAILED, "gpu")] == 1
    assert census.attempts == {"failed": 2}
    overview = store.overview()
    assert overview.oldest_waiting is not None
    job_id, since = overview.oldest_waiting
    assert job_id == 1
    assert (overview.now - since).total_seconds() < 3600


def test_a_run_put_back_waits_from_its_end(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    _a_week_ago(store)
    run = store.book()
    assert run is not None
    assert store.finish(run, Status.START) is Status.START  # preempted: resumable
    assert store.census().oldest_waiting[None] < 3600
