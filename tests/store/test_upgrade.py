"""A table made by an earlier release is upgraded in place on first use, its jobs intact
and historied from then on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import MetaData, Table, insert, inspect, text

from dbdict_celery.config import table_path
from dbdict_celery.experiment.status import Status
from dbdict_celery.store import tables
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.engine import engine_for
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.schema import SCHEMA_VERSION, versions_table
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
    """What the first release made: no `queue` column, no attempt or metric table, no study
    columns, no limits, no tags or notes, version 1 on record."""
    with store.engine.begin() as connection:
        quote = connection.dialect.identifier_preparer.quote
        table = quote(store.path.table)
        for index in ("_study", "_group"):
            connection.execute(text(f"DROP INDEX {quote(store.path.table + index)}"))
        for column in ("queue", "study", "trial", "prune_requested", "limits", "run_group",
                       "max_running", "sole_task_id", "tags", "note", "queued_at"):  # fmt: skip
            connection.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        for companion in (store.attempt_table, store.metric_table):
            connection.execute(text(f"DROP TABLE {quote(companion.name)}"))
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
    assert {job.status for job in before} == set(Status) - {Status.PRUNED}  # came with v5
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


SCHEMAS = Path(__file__).with_name("schemas")  # each released version's DDL, frozen


def _made_by_release(location: str, version: int) -> None:
    """The job table of `location` as the release of schema `version` made it: its frozen
    DDL, and its row in dbdict_schema."""
    path = table_path(location)
    engine = engine_for(path)
    ddl = (SCHEMAS / f"v{version}.{engine.dialect.name}.sql").read_text(encoding="utf-8")
    body = "\n".join(line for line in ddl.splitlines() if not line.startswith("--"))
    versions = versions_table(MetaData())
    with engine.begin() as connection:
        versions.create(connection, checkfirst=True)
        for statement in filter(str.strip, body.replace("{table}", path.table).split(";")):
            connection.execute(text(statement))
        connection.execute(insert(versions).values(table_name=path.table, version=version))


def _shape(store: JobStore, table: Table) -> dict[str, Any]:
    """What a user of the table sees of its structure, its own name written as T: columns in
    order (type, nullable, default), primary key, unique constraints, indexes."""
    inspector = inspect(store.engine)
    name = table.name

    def named(text: object) -> str:
        return str(text).replace(store.path.table, "T")

    return {
        "columns": [
            (column["name"], str(column["type"]), column["nullable"], named(column["default"]))
            for column in inspector.get_columns(name)
        ],
        "primary key": inspector.get_pk_constraint(name)["constrained_columns"],
        "unique": sorted(tuple(u["column_names"]) for u in inspector.get_unique_constraints(name)),
        "indexes": sorted(
            (named(index["name"]), tuple(index["column_names"]), named(index.get("column_sorting")))
            for index in inspector.get_indexes(name)
        ),
    }


@pytest.mark.parametrize("version", range(1, SCHEMA_VERSION))
def test_a_table_of_each_earlier_release_is_upgraded_to_what_a_new_one_is(
    location: str, version: int
) -> None:
    base, name = location.rsplit("/", 1)
    _made_by_release(f"{base}/{name}_old", version)
    upgraded = JobStore.open(f"{base}/{name}_old", create=False)
    fresh = JobStore.open(f"{base}/{name}_new")
    for part in ("table", "attempt_table", "metric_table"):
        assert _shape(upgraded, getattr(upgraded, part)) == _shape(fresh, getattr(fresh, part))
    list(upgraded.insert([NewJob("tests.experiments.mark", {"n": 1}, queue="gpu")]))
    run = upgraded.book()
    assert run is not None
    assert upgraded.finish(run, Status.DONE, {"n": 1}) is Status.DONE
    assert [(job.queue, job.status) for job in upgraded.jobs()] == [("gpu", Status.DONE)]
    assert upgraded.metrics(run.id) == [], "the metric table is there, empty"


def test_a_table_dropped_by_hand_is_made_again_over_its_schema_row(location: str) -> None:
    """Its row in dbdict_schema outlives it (here, of an earlier release): the table is made
    again at this release's version, not upgraded, and its row says so."""
    store = JobStore.open(location)
    with store.engine.begin() as connection:
        for table in (store.metric_table, store.attempt_table, store.table):
            table.drop(connection)
        connection.execute(
            text("UPDATE dbdict_schema SET version = 1 WHERE table_name = :name"),
            {"name": store.path.table},
        )
    tables._READY.clear()  # as a new process would: it has not seen the table yet

    again = JobStore.open(location)
    with again.engine.connect() as connection:
        versions = connection.scalars(
            text("SELECT version FROM dbdict_schema WHERE table_name = :name"),
            {"name": again.path.table},
        ).all()
    assert versions == [SCHEMA_VERSION]
    list(again.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    assert again.book() is not None
    assert [a.attempt for a in again.attempts(1)] == [1]
