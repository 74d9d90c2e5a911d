"""Optimize's trials in the job table: named by study and number, and stopped by a pruner."""

from __future__ import annotations

import time

import pytest

from dbdict_celery.errors import StoreError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.job import Inserted, NewJob, Standing
from dbdict_celery.store.store import JobStore


def _trial(number: int, lr: float = 0.1, study: str = "s") -> NewJob:
    return NewJob("tests.experiments.mark", {"lr": lr}, study=study, trial=number)


def _inserted(store: JobStore, *jobs: NewJob) -> list[Inserted]:
    return [row for batch in store.insert(jobs) for row in batch]


def test_a_trial_is_known_by_its_study_and_number_not_its_parameters(store: JobStore) -> None:
    first, same_params = _inserted(store, _trial(0), _trial(1))
    (again,) = _inserted(store, _trial(0, lr=0.5))
    assert (first.created, same_params.created, again.created) == (True, True, False)
    assert again.id == first.id, "a second driver's trial 0 is the first's"
    (other_study,) = _inserted(store, _trial(0, study="t"))
    (plain,) = _inserted(store, NewJob("tests.experiments.mark", {"lr": 0.1}))
    assert other_study.created
    assert plain.created
    assert [(job.trial, job.params) for job in store.trials("s")] == [
        (0, {"lr": 0.1}),
        (1, {"lr": 0.1}),
    ]
    assert store.get(plain.id).study is None


def test_a_pruned_trial_stops_at_its_next_save_and_ends_pruned_with_its_state(
    store: JobStore,
) -> None:
    list(store.insert([_trial(0), _trial(1)]))
    neighbour, pruned = store.book(), store.book()
    assert neighbour is not None
    assert pruned is not None
    assert [job.id for job in store.prune([pruned.id]).stopping] == [pruned.id]
    assert store.save(pruned, {"lr": 0.1, "loss": 0.9}) is Standing.STOP_ASKED
    assert store.finish(pruned, Status.START, {"lr": 0.1, "loss": 0.8}) is Status.PRUNED
    ended = store.get(pruned.id)
    assert (ended.status, ended.state["loss"]) == (Status.PRUNED, 0.8), "its state is kept"
    assert ended.finished_at is not None
    assert [a.outcome for a in store.attempts(pruned.id)] == [AttemptOutcome.PRUNED]
    assert store.save(neighbour, {"lr": 0.1}) is Standing.OWNED, "its neighbour runs on"
    (again,) = store.requeue([pruned.id])
    assert (again.status, again.prune_requested) == (Status.START, False), "requeue revives it"


def test_a_waiting_trial_is_pruned_at_once_and_a_users_cancel_wins_over_a_prune(
    store: JobStore,
) -> None:
    list(store.insert([_trial(0), _trial(1)]))
    run = store.book()
    assert run is not None
    waiting = next(job.id for job in store.trials("s") if job.id != run.id)
    assert store.prune([waiting]).cancelled == [waiting]
    assert store.get(waiting).status is Status.PRUNED
    store.prune([run.id])
    store.cancel([run.id])
    assert store.finish(run, Status.START) is Status.CANCELLED


def test_one_driver_holds_a_study_at_a_time_and_lets_go_when_done(
    store: JobStore, location: str
) -> None:
    """Two processes' stores (here two stores of one table) never both hold a study; another
    study, or the same name in another table, is free."""
    other = JobStore.open(location)
    elsewhere = JobStore.open(location.rsplit("/", 1)[0] + "/other_jobs")
    with store.driving("s") as held:
        assert held is not None
        held.keep()
        with other.driving("s") as again, other.driving("t") as another:
            assert (again, another is not None) == (None, True)
        with elsewhere.driving("s") as same_name:
            assert same_name is not None, "a study is one table's"
    with other.driving("s") as after:
        assert after is not None, "free once its driver is done"


def test_a_driver_that_keeps_its_lock_holds_it_past_the_idle_timeout_and_learns_when_it_is_lost(
    postgres_location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Postgres ends a transaction idling half the staleness window (here 1 s); the lock's
    transaction is kept alive by its driver's looks, and a lost one is said, not missed."""
    monkeypatch.setenv("DBDICT_STALE_AFTER", "2")
    monkeypatch.setattr("dbdict_celery.store.engine._ENGINES", {})  # as a fresh process's
    store, other = JobStore.open(postgres_location), JobStore.open(postgres_location)
    with store.driving("s") as lock:
        assert lock is not None
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # looks 0.2 s apart for three idle timeouts
            lock.keep()
            time.sleep(0.2)
        with other.driving("s") as again:
            assert again is None, "still held"
        time.sleep(2)  # no look: the server ends the idle transaction, and the lock with it
        with pytest.raises(StoreError, match="the lock of study 's' was lost"):
            lock.keep()
    with other.driving("s") as after:
        assert after is not None
