"""The job table: creation, batched dedup inserts, atomic booking, fenced writes, queries."""

from __future__ import annotations

import logging
import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import event

from dbdict_celery import UsageError
from dbdict_celery.errors import JobNotFound
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob, param_hash
from dbdict_celery.store.store import JobStore

pytestmark = pytest.mark.integration

EXPERIMENT = "examples.count.experiment"


def new_jobs(count: int, **extra: object) -> list[NewJob]:
    return [NewJob(EXPERIMENT, {"i": i, **extra}) for i in range(count)]


def insert_all(store: JobStore, jobs: list[NewJob]) -> list[int]:
    return [inserted.id for batch in store.insert(jobs) for inserted in batch]


def book_until_empty(location: str) -> list[int]:
    """One booking process: books jobs until none is left, returns their ids."""
    store = JobStore.open(location)
    booked = []
    while (job := store.book()) is not None:
        booked.append(job.id)
    return booked


def test_eight_processes_book_every_job_exactly_once(store: JobStore, location: str) -> None:
    ids = insert_all(store, new_jobs(2000))
    # forked, as Celery's prefork pool forks its children (spawn would leave its resource
    # tracker running after the session)
    with multiprocessing.get_context("fork").Pool(8) as pool:
        per_process = pool.map(book_until_empty, [location] * 8)
    booked = [job_id for ids_of_one in per_process for job_id in ids_of_one]
    assert sorted(booked) == sorted(ids)
    assert len(set(booked)) == len(booked) == 2000
    assert sum(1 for ids_of_one in per_process if ids_of_one) >= 2, "the processes really competed"
    assert store.counts()[Status.RUNNING] == 2000
    assert {job.attempts for job in store.jobs()} == {1}


def test_scheduling_the_same_parameters_twice_leaves_one_row(store: JobStore) -> None:
    first = store.insert([NewJob(EXPERIMENT, {"lr": 0.1, "model.kind": "cnn"})])
    again = store.insert([NewJob(EXPERIMENT, {"model.kind": "cnn", "lr": 0.1})])
    (created,), (repeated,) = next(first), next(again)
    assert created.created
    assert not repeated.created
    assert created.id == repeated.id
    assert len(store.jobs()) == 1


def test_the_parameter_hash_ignores_key_order_but_not_types() -> None:
    assert param_hash("e", {"a": 1, "b": 2}) == param_hash("e", {"b": 2, "a": 1})
    assert param_hash("e", {"a": 1}) != param_hash("e", {"a": "1"})
    assert param_hash("e", {"a": 1}) != param_hash("other", {"a": 1})


def test_ten_thousand_jobs_insert_in_batches(store: JobStore) -> None:
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        inserted = [row for batch in store.insert(new_jobs(10_000)) for row in batch]
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    inserts = [s for s in statements if s.lstrip().upper().startswith("INSERT")]
    assert len(inserted) == 10_000
    assert all(row.created for row in inserted)
    assert len(inserts) <= 20, f"{len(inserts)} INSERT statements for 10,000 rows"
    assert len(statements) <= 60
    assert sum(store.counts().values()) == 10_000


def test_duplicates_within_and_across_batches(store: JobStore) -> None:
    jobs = new_jobs(5) + new_jobs(5)  # each job twice in one batch
    first = [row for batch in store.insert(jobs, batch_size=3) for row in batch]
    assert [row.created for row in first] == [True] * 5 + [False] * 5
    assert [row.id for row in first[:5]] == [row.id for row in first[5:]]
    assert sum(store.counts().values()) == 5


def test_booking_takes_the_highest_priority_then_the_oldest(store: JobStore) -> None:
    low, high_old, high_new = insert_all(
        store,
        [
            NewJob(EXPERIMENT, {"n": 1}, priority=1.0),
            NewJob(EXPERIMENT, {"n": 2}, priority=2.0),
            NewJob(EXPERIMENT, {"n": 3}, priority=2.0),
        ],
    )
    order = [job.id for job in iter(store.book, None)]
    assert order == [high_old, high_new, low]


def test_booking_records_the_run(store: JobStore) -> None:
    (job_id,) = insert_all(store, new_jobs(1))
    job = store.book(host="node7", pid=4242)
    assert job is not None
    assert (job.id, job.status, job.attempts) == (job_id, Status.RUNNING, 1)
    assert (job.host, job.pid) == ("node7", 4242)
    assert job.run_id
    assert job.started_at
    assert job.heartbeat_at


def test_booking_one_given_job_only_if_it_is_start(store: JobStore) -> None:
    first, second = insert_all(store, new_jobs(2))
    job = store.book(second)
    assert job is not None
    assert job.id == second
    assert store.book(second) is None, "a duplicate delivery books nothing"
    assert store.finish(job, Status.DONE, {"i": 1})
    assert store.book(second) is None
    store.cancel([first])
    assert store.book(first) is None
    assert store.book(10**9) is None


def test_a_job_whose_row_names_its_sole_message_is_booked_by_that_one_only(
    store: JobStore,
) -> None:
    """After `dbdict priority`, the message sent before (at the old priority) books nothing;
    the one it sent does, and so, once that run is over, does any later message."""
    (job_id,) = insert_all(store, new_jobs(1))
    store.set_task_ids({job_id: "jobs-1-old"})
    (waiting,) = store.reprioritize([job_id], 5.0)
    assert waiting.priority == 5.0
    store.set_task_ids({job_id: "jobs-1-new"}, sole=True)
    assert store.book(job_id, task_id="jobs-1-old") is None, "the stale message"
    booked = store.book(job_id, task_id="jobs-1-new")
    assert booked is not None
    store.finish(booked, Status.START)
    assert store.book(job_id, task_id="jobs-1-restart") is not None, "its next message"


def test_cancelling_a_running_job_asks_it_to_stop_and_keeps_what_it_saves(
    store: JobStore, caplog: pytest.LogCaptureFixture
) -> None:
    insert_all(store, new_jobs(1))
    run = store.book(task_id="task-1")
    assert run is not None
    assert store.save(run, {"i": 0, "progress": 1})
    cancellation = store.cancel([run.id])
    assert cancellation.cancelled == []
    assert [(job.id, job.task_id) for job in cancellation.stopping] == [(run.id, "task-1")]
    assert not store.save(run, {"i": 0, "progress": 2}), "the run is told to stop"
    assert not store.heartbeat(run)
    assert store.get(run.id).state == {"i": 0, "progress": 2}, "but its save landed"
    assert store.finish(run, Status.START, {"i": 0, "progress": 3}, priority=2.0) == (
        Status.CANCELLED
    )
    row = store.get(run.id)
    assert (row.status, row.state, row.priority) == (
        Status.CANCELLED,
        {"i": 0, "progress": 3},
        1.0,
    )
    assert row.finished_at is not None
    with caplog.at_level(logging.WARNING):
        assert not store.save(run, {"i": 0, "progress": 4})
    assert f"job {run.id} is no longer this run's (it is CANCELLED)" in caplog.text
    assert store.get(run.id).state == {"i": 0, "progress": 3}


def test_a_run_that_completes_despite_a_cancel_request_is_done(store: JobStore) -> None:
    insert_all(store, new_jobs(1))
    run = store.book()
    assert run is not None
    store.cancel([run.id])
    assert store.finish(run, Status.DONE, {"result": 1}) == Status.DONE


def test_cancel_for_a_revoked_task_touches_only_that_tasks_job(store: JobStore) -> None:
    first, second = insert_all(store, new_jobs(2))
    store.set_task_ids({first: "task-a", second: "task-b"})
    assert store.cancel([first, second], task_id="task-c").cancelled == []
    assert store.cancel([first, second], task_id="task-b").cancelled == [second]
    assert (store.get(first).status, store.get(second).status) == (
        Status.START,
        Status.CANCELLED,
    )


def test_release_puts_a_killed_run_back_from_its_last_save(store: JobStore) -> None:
    first, second = insert_all(store, new_jobs(2))
    runs = {job.id: job for job in iter(lambda: store.book(task_id="t"), None)}
    store.set_task_ids({first: "task-a"})  # only START rows take a scheduled task id
    assert store.get(first).task_id == "t"
    store.save(runs[first], {"progress": 5})
    assert store.release(first, "other-task", priority=2.0) is None
    assert store.release(first, "t", priority=2.0) == Status.START
    released = store.get(first)
    assert (released.status, released.state, released.priority, released.run_id) == (
        Status.START,
        {"progress": 5},
        2.0,
        None,
    )
    assert store.release(first, "t") is None, "only a RUNNING job is released"
    store.cancel([second])
    assert store.release(second, "t", priority=2.0) == Status.CANCELLED
    assert store.get(second).priority == 1.0


def test_a_rebooked_job_ignores_its_stale_run(store: JobStore) -> None:
    insert_all(store, new_jobs(1))
    stale = store.book(host="dead-node")
    assert stale is not None
    assert [job.id for job in store.requeue([stale.id], from_statuses=[Status.RUNNING])] == [
        stale.id
    ]
    fresh = store.book(host="live-node")
    assert fresh is not None
    assert fresh.id == stale.id
    assert fresh.attempts == 2
    assert not store.save(stale, {"from": "stale"})
    assert store.finish(stale, Status.FAILED, error="stale traceback") is None
    assert store.save(fresh, {"from": "fresh"})
    row = store.get(fresh.id)
    assert (row.status, row.host, row.state, row.error) == (
        Status.RUNNING,
        "live-node",
        {"from": "fresh"},
        None,
    )


def test_finishing_records_each_outcome(store: JobStore) -> None:
    done_id, failed_id, paused_id = insert_all(store, new_jobs(3))
    runs = {job.id: job for job in iter(store.book, None)}
    assert store.finish(runs[done_id], Status.DONE, {"result": 1.5}) == Status.DONE
    assert store.finish(runs[failed_id], Status.FAILED, {"i": 1}, error="Traceback: boom") == (
        Status.FAILED
    )
    assert store.finish(runs[paused_id], Status.START, {"count": 3}, priority=2.0) == (Status.START)
    done, failed, paused = (store.get(i) for i in (done_id, failed_id, paused_id))
    assert (done.status, done.state, done.finished_at is not None) == (
        Status.DONE,
        {"result": 1.5},
        True,
    )
    assert (failed.status, failed.error) == (Status.FAILED, "Traceback: boom")
    assert (paused.status, paused.priority, paused.run_id) == (Status.START, 2.0, None)
    assert store.book() is not None
    assert store.get(paused_id).attempts == 2


def test_requeue_brings_failed_and_cancelled_jobs_back(store: JobStore) -> None:
    failed_id, cancelled_id, done_id = insert_all(store, new_jobs(3))
    runs = {job.id: job for job in iter(store.book, None)}
    store.finish(runs[failed_id], Status.FAILED, error="x")
    store.finish(runs[done_id], Status.DONE)
    store.cancel([cancelled_id])
    assert store.finish(runs[cancelled_id], Status.START) == Status.CANCELLED
    requeued = store.requeue([failed_id, cancelled_id, done_id], priority=5.0)
    assert [job.id for job in requeued] == sorted([failed_id, cancelled_id])
    assert store.get(done_id).status == Status.DONE
    assert {store.get(i).priority for i in (failed_id, cancelled_id)} == {5.0}


def test_counts_and_filters(store: JobStore) -> None:
    jobs = [
        NewJob(EXPERIMENT, {"lr": 0.001, "model.kind": "cnn", "tag": "1"}),
        NewJob(EXPERIMENT, {"lr": 0.1, "model.kind": "mlp", "tag": "a"}),
        NewJob(EXPERIMENT, {"lr": 1, "model.kind": "cnn", "flag": True}),
        NewJob(EXPERIMENT, {"lr": "auto", "model.kind": "rnn", "flag": None}),
    ]
    small, medium, large, auto = insert_all(store, jobs)
    run = store.book(medium)
    assert run is not None
    store.finish(run, Status.DONE, {**run.state, "result.error": 0.05})

    def ids(*where: str, status: Status | None = None) -> list[int]:
        return [job.id for job in store.jobs(status=status, where=where)]

    assert ids("lr>0.01") == [medium, large]
    assert ids("lr<=0.1") == [small, medium]
    assert ids("lr=1") == ids("lr=1.0") == [large]
    assert ids("lr=auto") == [auto]
    assert ids("model.kind=cnn") == [small, large]
    assert ids("model.kind!=cnn") == [medium, auto]
    assert ids("model.kind=cnn", "lr>0.01") == [large]
    assert ids("result.error<0.1") == [medium]
    assert ids("state.tag=1") == [], "the string '1' is not the number 1"
    assert ids("state.tag='1'") == [small], "a state key named tag is state.tag"
    assert ids("flag=True") == [large]
    assert ids("flag=None") == [auto]
    assert ids("lr>0", status=Status.START) == [small, large]
    assert store.counts() == {
        Status.START: 3,
        Status.RUNNING: 0,
        Status.DONE: 1,
        Status.FAILED: 0,
        Status.CANCELLED: 0,
        Status.PRUNED: 0,
    }
    assert len(store.jobs(limit=2)) == 2


@pytest.mark.parametrize("bad", ["lr", "lr>>1", "lr>abc", "1lr=3", "a;drop=1", "lr>True"])
def test_malformed_filters_are_usage_errors(store: JobStore, bad: str) -> None:
    with pytest.raises(UsageError):
        store.jobs(where=[bad])


def test_get_an_unknown_job(store: JobStore) -> None:
    with pytest.raises(JobNotFound, match="no job 12345"):
        store.get(12345)


def test_the_table_records_its_schema_version(store: JobStore) -> None:
    from sqlalchemy import select

    from dbdict_celery.store.schema import SCHEMA_VERSION

    with store.engine.connect() as connection:
        versions = connection.execute(
            select(store.tables.versions.c.version).where(
                store.tables.versions.c.table_name == store.path.table
            )
        ).scalars()
        assert list(versions) == [SCHEMA_VERSION]
    indexes = {index.name for index in store.table.indexes}
    assert f"{store.path.table}_booking" in indexes


def test_timestamps_carry_their_zone_and_milliseconds_on_both_databases(location: str) -> None:
    """SQLite keeps neither a zone nor, with CURRENT_TIMESTAMP, fractions of a second: a
    job's times still compare with Postgres's, and a short run still has a duration."""
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(2)]))
    for _ in range(2):
        run = store.book()
        assert run is not None
        store.finish(run, Status.DONE, {})
    first, second = store.jobs()
    for job in (first, second):
        for moment in (job.created_at, job.started_at, job.finished_at, job.heartbeat_at):
            assert moment is not None
            assert moment.utcoffset() == timedelta(0), "UTC, and saying so"
    assert any(
        moment.microsecond
        for job in (first, second)
        for moment in (job.started_at, job.finished_at)
        if moment is not None
    ), "fractions of a second are kept"
