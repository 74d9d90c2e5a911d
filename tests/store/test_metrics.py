"""The metric table: curves written only by the run that owns the job, with its own writes,
each (job, key, step) once, NaN and infinities intact."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job, NewJob, Standing
from dbdict_celery.store.metrics import CurveSummary
from dbdict_celery.store.store import JobStore

pytestmark = pytest.mark.integration


def _reported(steps: range, run: int = 1, **extra: float) -> Reports:
    """A buffer with `loss` 1000 x run + step at each step (and `extra` keys, the same value
    at every step)."""
    reports = Reports()
    for step in steps:
        reports.add(step, {"loss": 1000 * run + step, **extra})
    return reports


def _booked(store: JobStore, n: int = 1) -> Job:
    list(store.insert([NewJob("tests.experiments.mark", {"n": n})]))
    job = store.book()
    assert job is not None
    return job


def _curve(store: JobStore, job_id: int, key: str = "loss") -> list[tuple[int, float, int | None]]:
    return [(p.step, p.value, p.run) for p in store.metrics(job_id, keys=[key])]


def test_a_save_writes_what_was_reported_since_the_last_one(store: JobStore) -> None:
    job = _booked(store)
    store.save(job, {"next": 5}, reports=_reported(range(5)))
    store.save(job, {"next": 8}, reports=_reported(range(5, 8)))
    store.save(job, {"next": 10}, reports=_reported(range(8, 10)))  # a run's last points
    assert store.finish(job, Status.DONE, {"next": 10})
    assert _curve(store, job.id) == [(step, 1000.0 + step, 1) for step in range(10)]


def test_a_run_that_lost_its_job_writes_no_point(store: JobStore) -> None:
    job = _booked(store)
    store.save(job, {"next": 3}, reports=_reported(range(3)))
    store.release_dead(job, max_attempts=5, reason="its process died")  # run 2 takes over
    second = store.book()
    assert second is not None
    assert second.run_id != job.run_id
    store.save(second, {"next": 5}, reports=_reported(range(3, 5), run=2))
    assert store.save(job, {"next": 9}, reports=_reported(range(3, 9))) is Standing.LOST
    assert store.finish(job, Status.DONE, {}) is None
    assert _curve(store, job.id) == [(s, 1000.0 + s, 1) for s in range(3)] + [
        (s, 2000.0 + s, 2) for s in range(3, 5)
    ], "the first run's late points are nowhere"


def test_points_reported_again_from_a_resumed_save_replace_nothing_but_their_steps(
    store: JobStore,
) -> None:
    job = _booked(store)
    store.save(job, {"next": 31}, reports=_reported(range(31)))
    store.release_dead(job, max_attempts=5, reason="its process died")  # 31..37 were lost
    resumed = store.book()
    assert resumed is not None
    store.save(resumed, {}, reports=_reported(range(31, 40), run=2))
    assert store.finish(resumed, Status.DONE, {})
    curve = _curve(store, job.id)
    assert [step for step, _, _ in curve] == list(range(40)), "each step once"
    assert {run for step, _, run in curve if step < 31} == {1}
    assert {run for step, _, run in curve if step >= 31} == {2}


def test_a_curve_that_goes_back_is_replaced_from_that_step_other_keys_untouched(
    store: JobStore,
) -> None:
    job = _booked(store)
    store.save(job, {}, reports=_reported(range(10), acc=0.5))
    store.save(job, {}, reports=_reported(range(4, 6), run=7))  # loss restarted at step 4
    assert _curve(store, job.id) == [(s, 1000.0 + s, 1) for s in range(4)] + [
        (4, 7004.0, 1), (5, 7005.0, 1)
    ]  # fmt: skip
    assert [step for step, _, _ in _curve(store, job.id, "acc")] == list(range(10))


def test_nan_and_infinities_come_back_from_every_reader(store: JobStore) -> None:
    job = _booked(store)
    reports = Reports()
    reports.add(0, {"loss": math.nan})
    reports.add(1, {"loss": math.inf})
    reports.add(2, {"loss": -math.inf})
    store.save(job, {}, reports=reports)
    values = [value for _, value, _ in _curve(store, job.id)]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]
    summary = store.curve_summaries(job.id)
    assert summary == {"loss": CurveSummary(steps=3, last_step=2, last_value=-math.inf)}
    columns = store.curve_columns("loss", [job.id])
    assert (list(columns.job_ids), list(columns.steps)) == ([job.id] * 3, [0, 1, 2])
    assert math.isnan(columns.values[0])
    assert list(columns.values)[1:] == [math.inf, -math.inf]
    frame = store.metrics_frame(job.id)
    assert list(frame.columns) == ["id", "key", "step", "value", "run"]
    assert frame["value"].isna().tolist() == [True, False, False]
    assert frame["value"].tolist()[1:] == [math.inf, -math.inf]


def test_curves_of_many_jobs_and_keys_are_read_by_job_key_and_step(store: JobStore) -> None:
    jobs = [_booked(store, n) for n in range(3)]
    for job in jobs:
        store.save(job, {}, reports=_reported(range(3), acc=float(job.id)))
    points = store.metrics([jobs[0].id, jobs[2].id], keys=["acc"])
    assert [(p.job_id, p.key, p.step) for p in points] == [
        (job.id, "acc", step) for job in (jobs[0], jobs[2]) for step in range(3)
    ]
    assert len(store.metrics()) == 3 * 3 * 2
    assert store.curve_summaries(jobs[1].id)["acc"] == CurveSummary(3, 2, float(jobs[1].id))


@pytest.fixture
def postgres_store(postgres_location: str) -> JobStore:
    return JobStore.open(postgres_location)


@pytest.fixture
def statements(postgres_store: JobStore) -> Iterator[list[str]]:
    """Every statement the store sends while the test runs."""
    sent: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        sent.append(statement)

    event.listen(postgres_store.engine, "before_cursor_execute", count)
    yield sent
    event.remove(postgres_store.engine, "before_cursor_execute", count)


def test_on_postgres_the_points_ride_in_the_save_s_own_statement(
    postgres_store: JobStore, statements: list[str]
) -> None:
    """SQLite sends them after the save, in its transaction: a local round trip is free."""
    store = postgres_store
    job = _booked(store)
    statements.clear()
    store.save(job, {"a": 1})
    alone = len(statements)
    statements.clear()
    store.save(job, {"a": 2}, reports=_reported(range(100), acc=1.0))
    assert len(statements) == alone, "the same round trips with 200 points as without"
    assert len(store.metrics(job.id)) == 200
