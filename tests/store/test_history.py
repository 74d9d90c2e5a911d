"""The attempt table: every run of a job opened by its booking and closed, once, by whatever
ends it, on Postgres and SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import func, update

from dbdict_celery.errors import StoreError, UsageError
from dbdict_celery.experiment.provenance import Code, environment
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome, StopReason
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.store.runs import booked, released

pytestmark = pytest.mark.integration


@pytest.fixture
def job_id(store: JobStore) -> int:
    (inserted,) = next(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    return inserted.id


def test_a_run_is_historied_from_booking_to_outcome(store: JobStore, job_id: int) -> None:
    here = environment()
    store.register_environment(here)
    job = booked(store, job_id=job_id, host="node1", pid=4242, task_id="t-1",
                 worker="celery@node1", environment=here)  # fmt: skip
    (opened,) = store.attempts(job_id)
    assert (opened.attempt, opened.run_id, opened.outcome) == (1, job.run_id, None)
    assert (opened.host, opened.pid, opened.task_id, opened.worker) == (
        "node1", 4242, "t-1", "celery@node1",
    )  # fmt: skip
    assert opened.started_at == job.started_at
    assert (opened.python, opened.environment) == (here.python, here.hash)
    assert store.packages(here.hash) == list(here.packages)

    code = Code(commit="c0ffee" * 6 + "abcd", branch="main", dirty=True, repository="/src")
    store.save(job, {"n": 1, "loss": 0.5}, code=code)
    store.finish(job, Status.DONE, {"n": 1, "loss": 0.25})
    (ended,) = store.attempts(job_id)
    assert ended.outcome is AttemptOutcome.DONE
    assert ended.finished_at is not None
    assert ended.finished_at >= ended.started_at
    assert (ended.code_commit, ended.code_branch, ended.code_dirty) == (code.commit, "main", True)
    assert ended.code == "c0ffeec0ff (main), dirty"


def test_each_ending_is_recorded_with_its_reason(store: JobStore, job_id: int) -> None:
    first = booked(store, job_id=job_id)
    store.finish(first, Status.START, {"n": 1}, reason=StopReason.SHUTDOWN)
    second = booked(store, job_id=job_id)
    store.finish(second, Status.START, {"n": 1})  # returned INCOMPLETE by itself
    third = booked(store, job_id=job_id)
    store.finish(third, Status.FAILED, {"n": 1}, error="Traceback: boom")
    store.requeue([job_id])
    fourth = booked(store, job_id=job_id)
    store.cancel([job_id])
    store.finish(fourth, Status.START, {"n": 1}, reason=StopReason.CANCEL)
    endings = [(a.attempt, a.outcome, a.reason, a.error) for a in store.attempts(job_id)]
    assert endings == [
        (1, AttemptOutcome.INCOMPLETE, StopReason.SHUTDOWN, None),
        (2, AttemptOutcome.INCOMPLETE, None, None),
        (3, AttemptOutcome.FAILED, None, "Traceback: boom"),
        (4, AttemptOutcome.CANCELLED, StopReason.CANCEL, None),
    ]


def test_a_give_back_is_kept_but_not_counted(store: JobStore, job_id: int) -> None:
    job = booked(store, job_id=job_id, host="nomodule")
    store.unbook(job, "experiment not importable here")
    again = booked(store, job_id=job_id, host="good")
    store.finish(again, Status.DONE, {"n": 1})
    history = [(a.attempt, a.host, a.outcome, a.reason) for a in store.attempts(job_id)]
    assert history == [
        (1, "nomodule", AttemptOutcome.GIVEN_BACK, "experiment not importable here"),
        (1, "good", AttemptOutcome.DONE, None),
    ]


def test_dead_runs_end_lost(store: JobStore, job_id: int) -> None:
    killed = booked(store, job_id=job_id, task_id="task-a")
    assert store.release(job_id, "task-a", reason=StopReason.KILLED) is Status.START
    silent = booked(store, job_id=job_id, task_id="task-b")
    assert released(lambda: store.release_stale(silent, 0.0, max_attempts=5)) is Status.START
    gone = booked(store, job_id=job_id, task_id="task-c")
    assert released(lambda: store.release_lost(gone, 5, "died", silent_for=0.0)) is Status.START
    assert store.finish(gone, Status.DONE, {"n": 1}) is None, "a dead run's late outcome"
    history = [(a.task_id, a.outcome, a.reason) for a in store.attempts(job_id)]
    assert history == [
        ("task-a", AttemptOutcome.LOST, StopReason.KILLED),
        ("task-b", AttemptOutcome.LOST, StopReason.STALE),
        ("task-c", AttemptOutcome.LOST, StopReason.DIED),
    ], "each closed once, by what found it dead"
    assert "no heartbeat" in (store.attempts(job_id)[1].error or "")
    assert killed.run_id != silent.run_id != gone.run_id


@pytest.mark.parametrize("revoke_lands_first", [True, False])
def test_a_revoke_is_the_reason_whichever_lands_first(
    store: JobStore, job_id: int, revoke_lands_first: bool
) -> None:
    """A revoke SIGTERMs the run and cancels its row at the same time: the run's outcome and
    the revoke's note may land in either order, and the attempt ends cancelled, by revoke."""
    job = booked(store, job_id=job_id, task_id="revoked-task")
    if revoke_lands_first:
        store.cancel([job_id], task_id="revoked-task")
        store.note_revoke(job_id, "revoked-task")
        assert store.finish(job, Status.START, {"n": 1}, reason="SIGTERM") is Status.CANCELLED
    else:
        assert store.finish(job, Status.START, {"n": 1}, reason="SIGTERM") is Status.START
        store.cancel([job_id], task_id="revoked-task")
        store.note_revoke(job_id, "revoked-task")
    assert store.get(job_id).status is Status.CANCELLED
    (attempt,) = store.attempts(job_id)
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.CANCELLED, StopReason.REVOKE)


def test_a_revoke_of_an_ended_run_changes_nothing(store: JobStore, job_id: int) -> None:
    job = booked(store, job_id=job_id, task_id="done-task")
    store.finish(job, Status.DONE, {"n": 1})
    store.note_revoke(job_id, "done-task")
    (attempt,) = store.attempts(job_id)
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.DONE, None)


def test_a_revoke_leaves_a_run_that_ended_for_another_reason_as_it_was(
    store: JobStore, job_id: int
) -> None:
    """A run preempted, then its job cancelled and its old task revoked: the preemption
    stays the reason."""
    job = booked(store, job_id=job_id, task_id="old-task")
    store.finish(job, Status.START, {"n": 1}, reason=StopReason.SHUTDOWN)
    store.cancel([job_id], task_id="old-task")
    store.note_revoke(job_id, "old-task")
    (attempt,) = store.attempts(job_id)
    assert (attempt.outcome, attempt.reason) == (AttemptOutcome.INCOMPLETE, StopReason.SHUTDOWN)


def test_runs_an_earlier_release_ended_are_closed_from_their_job(store: JobStore) -> None:
    """An earlier release's worker ends runs without a word to the attempt table: reconcile
    closes those attempts from what the job row says, and leaves live runs open."""
    inserted = next(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(3)]))
    done, resumed, live = (booked(store, job_id=row.id) for row in inserted)
    t = store.table
    with store.engine.begin() as connection:  # as the earlier release wrote its outcomes
        connection.execute(
            update(t).where(t.c.id == done.id).values(status=Status.DONE, finished_at=func.now())
        )
        connection.execute(
            update(t).where(t.c.id == resumed.id).values(status=Status.START, run_id=None)
        )
    assert store.close_orphaned_attempts() == 2
    assert store.close_orphaned_attempts() == 0, "once"
    assert store.attempts(done.id)[0].finished_at is not None, "its job says when"
    assert store.attempts(resumed.id)[0].finished_at is None, "unknown, not made up"
    endings = {
        job.id: [(a.outcome, a.reason) for a in store.attempts(job.id)]
        for job in (done, resumed, live)
    }
    assert endings == {
        done.id: [(AttemptOutcome.DONE, "not recorded")],
        resumed.id: [(AttemptOutcome.LOST, "not recorded")],
        live.id: [(None, None)],
    }
    assert store.finish(live, Status.DONE, {"n": 2}) is Status.DONE
    assert store.attempts(live.id)[0].outcome is AttemptOutcome.DONE


def test_a_table_in_the_way_of_the_history_is_named(location: str) -> None:
    base = location.rsplit("/", 1)[0]
    name = f"{location.rsplit('/', 1)[1]}_x"
    in_the_way = JobStore.open(f"{base}/{name}_attempt")  # a job table, named so by a user
    try:
        with pytest.raises(StoreError, match=f"a table '{name}_attempt' is already there"):
            JobStore.open(f"{base}/{name}")
    finally:
        with in_the_way.engine.begin() as connection:
            for table in (in_the_way.metric_table, in_the_way.attempt_table, in_the_way.table):
                table.drop(connection)


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("variables=1", "attempts cannot be filtered on 'variables'"),
        ("nope=1", "attempts cannot be filtered on 'nope'"),
        ("outcome=finished", "outcome is one of done, incomplete"),
        ("outcome>1", "compare it with = or !="),
        ("started_at=1", "cannot compare the times in started_at"),
        ("pid=abc", "pid holds int values"),
    ],
)
def test_a_bad_attempt_filter_is_a_usage_error(
    store: JobStore, condition: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        store.jobs(attempt=[condition])


def test_jobs_are_chosen_by_their_runs(store: JobStore) -> None:
    inserted = next(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(3)]))
    lost, failed, running = (booked(store, job_id=row.id, host=f"node{row.id}")
                             for row in inserted)  # fmt: skip
    released(lambda: store.release_stale(lost, 0.0, max_attempts=5))
    store.finish(failed, Status.FAILED, {"n": 1}, error="boom")

    def chosen(*conditions: str) -> list[int]:
        return [job.id for job in store.jobs(attempt=conditions)]

    assert chosen("outcome=lost") == [lost.id]
    assert chosen("outcome=running") == [running.id]
    assert chosen("outcome!=running") == [lost.id, failed.id]
    assert chosen("outcome=failed", f"host=node{failed.id}") == [failed.id]
    assert chosen("outcome=failed", f"host=node{lost.id}") == [], "one run must meet both"
    list(store.insert([NewJob("tests.experiments.mark", {"n": 3})]))
    booked(store, host="123")  # a host name that reads as a number
    assert len(chosen("host=123")) == 1, "a text column is compared with the text typed"
