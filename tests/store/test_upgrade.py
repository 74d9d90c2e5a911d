"""A table made by an earlier release is upgraded in place on first use, its jobs intact
and historied from then on."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from dbdict_celery.experiment.status import Status
from dbdict_celery.store import tables
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.schema import SCHEMA_VERSION
from dbdict_celery.store.store import JobStore


def _jobs_in_every_status(store: JobStore) -> None:
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(5)]))
    booked = [store.book() for _ in range(4)]
    assert None not in booked
    running, done, failed, cancelled = (job for job in booked if job is not None)
    store.save(running, {"n": 0, "progress": 0.5})
    store.finish(done, Status.DONE, {"n": 1, "result": 0.25})
    store.finish(failed, Status.FAILED, {"n": 2}, error="Traceback: boom")
    store.cancel([cancelled.id])
    store.finish(cancelled, Status.START)  # a cancel asked: it ends CANCELLED


def _as_version_1(store: JobStore) -> None:
    """What the first release made: no `queue` column, no attempt table, version 1 on record."""
    with store.engine.begin() as connection:
        quote = connection.dialect.identifier_preparer.quote
        table = quote(store.path.table)
        connection.execute(text(f"ALTER TABLE {table} DROP COLUMN queue"))
        connection.execute(text(f"DROP TABLE {quote(store.attempt_table.name)}"))
        connection.execute(
            text("UPDATE dbdict_schema SET version = 1 WHERE table_name = :name"),
            {"name": store.path.table},
        )
    tables._READY.clear()  # as a new process would: it has not seen the table yet


@pytest.mark.parametrize("name", ["jobs_v1", "Mixed_Case"])
def test_a_version_1_table_is_upgraded_in_place_with_every_job_intact(
    location: str, name: str
) -> None:
    location = f"{location.rsplit('/', 1)[0]}/{name}"
    store = JobStore.open(location)
    _jobs_in_every_status(store)
    before = store.jobs()
    assert {job.status for job in before} == set(Status)
    _as_version_1(store)

    upgraded = JobStore.open(location, create=False)  # a worker's open upgrades it too
    assert upgraded.jobs() == before, "every row, every column, as it was"
    with upgraded.engine.connect() as connection:
        version = connection.scalar(
            text("SELECT version FROM dbdict_schema WHERE table_name = :name"),
            {"name": upgraded.path.table},
        )
    assert version == SCHEMA_VERSION
    list(upgraded.insert([NewJob("tests.experiments.mark", {"n": 9}, queue="gpu")]))
    assert [job.queue for job in upgraded.jobs()][-1] == "gpu", "the new column works"
    running = next(job for job in before if job.status is Status.RUNNING)
    assert [a.outcome for a in upgraded.attempts(running.id)] == [None], "its run is historied"
    assert upgraded.finish(running, Status.DONE, {"n": 0}) is Status.DONE, "its run goes on"
    assert [(a.attempt, a.outcome) for a in upgraded.attempts(running.id)] == [
        (1, AttemptOutcome.DONE)
    ], "and its end is recorded"
    ended = [job for job in before if job.status is not Status.RUNNING]
    assert all(upgraded.attempts(job.id) == [] for job in ended), "no history is made up"
    again = upgraded.book(host="node7")
    assert again is not None
    assert again.status is Status.RUNNING
    upgraded.finish(again, Status.DONE, {"n": 4})
    assert [(a.host, a.outcome) for a in upgraded.attempts(again.id)] == [
        ("node7", AttemptOutcome.DONE)
    ], "a run after the upgrade is historied"
