"""A job's runs are counted apart, on Postgres and SQLite: only deaths use up the lost-run
limit, only failures the retries; preemptions use up nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dbdict_celery.config import LOST_RUNS
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import RunCounts, StopReason
from dbdict_celery.store.job import Job, NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import dbdict
from tests.store.runs import booked, released

pytestmark = pytest.mark.integration

FoundDead = Callable[[JobStore, Job], Status | None]


def _silent(store: JobStore, run: Job) -> Status | None:
    """As reconcile finds a run whose heartbeat stopped."""
    return store.release_stale(run, 0.0, LOST_RUNS)


def _died(store: JobStore, run: Job) -> Status | None:
    """As its worker finds a run whose process died."""
    return store.release_lost(run, LOST_RUNS, "its process died", silent_for=0.0)


@pytest.fixture
def job_id(store: JobStore) -> int:
    (inserted,) = next(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    return inserted.id


def _preempt(store: JobStore, job_id: int, how: str) -> None:
    """One run of the job, stopped from outside and put back to START: by its worker's
    shutdown, by a signal to the run itself, or killed by its worker after the grace period."""
    run = booked(store, job_id=job_id, task_id=f"task-{how}")
    if how == StopReason.KILLED:
        assert store.release(job_id, run.task_id or "", reason=how) is Status.START
    else:
        assert store.finish(run, Status.START, {"n": 1}, reason=how) is Status.START


PREEMPTIONS = (StopReason.SHUTDOWN, "SIGTERM", StopReason.KILLED)


@pytest.mark.parametrize("found_dead", [_silent, _died])
def test_a_job_preempted_three_times_then_lost_once_goes_back_to_start(
    store: JobStore, job_id: int, found_dead: FoundDead
) -> None:
    for how in PREEMPTIONS:
        _preempt(store, job_id, how)
    run = booked(store, job_id=job_id)
    assert released(lambda: found_dead(store, run)) is Status.START
    job = store.get(job_id)
    assert (job.status, job.attempts, job.error) == (Status.START, 4, None)
    assert store.run_counts(job_id) == RunCounts(deaths=1, failures=0, preemptions=3)


@pytest.mark.parametrize("found_dead", [_silent, _died])
def test_a_job_lost_lost_runs_times_fails_whatever_came_between(
    store: JobStore, job_id: int, found_dead: FoundDead
) -> None:
    """Preemptions and a failure between the deaths count for nothing: the LOST_RUNS-th
    death alone leaves the job FAILED, with how its run was lost."""
    for death in range(1, LOST_RUNS + 1):
        _preempt(store, job_id, PREEMPTIONS[death % len(PREEMPTIONS)])
        if death == 1:
            failing = booked(store, job_id=job_id)
            store.finish(failing, Status.FAILED, {"n": 1}, error="Traceback: boom")
            store.requeue([job_id])
        run = booked(store, job_id=job_id)
        status = released(lambda: found_dead(store, run))  # noqa: B023 (called at once)
        assert status is (Status.FAILED if death == LOST_RUNS else Status.START), death
    job = store.get(job_id)
    assert job.status is Status.FAILED
    assert re.search("no heartbeat|its process died", job.error or "")
    assert store.run_counts(job_id) == RunCounts(deaths=LOST_RUNS, failures=1, preemptions=3)


def test_only_failures_count_as_failures(store: JobStore, job_id: int) -> None:
    """What the worker's retries are measured by: a run given back (its machine could not
    start it) or returning INCOMPLETE by itself is none of the three."""
    first = booked(store, job_id=job_id)
    store.finish(first, Status.FAILED, {"n": 1}, error="Traceback: boom")
    store.requeue([job_id])
    _preempt(store, job_id, StopReason.SHUTDOWN)
    store.unbook(booked(store, job_id=job_id), "experiment not importable here")
    store.finish(booked(store, job_id=job_id), Status.START, {"n": 1})  # INCOMPLETE
    assert store.run_counts(job_id) == RunCounts(deaths=0, failures=1, preemptions=1)
    store.finish(booked(store, job_id=job_id), Status.FAILED, {"n": 1}, error="again")
    assert store.run_counts(job_id) == RunCounts(deaths=0, failures=2, preemptions=1)


def test_a_job_never_run_counts_nothing(store: JobStore, job_id: int) -> None:
    assert store.run_counts(job_id) == RunCounts(deaths=0, failures=0, preemptions=0)


def test_show_gives_the_three_counts(
    store: JobStore, job_id: int, location: str, tmp_path: Path
) -> None:
    for how in PREEMPTIONS[:2]:
        _preempt(store, job_id, how)
    failing = booked(store, job_id=job_id)
    store.finish(failing, Status.FAILED, {"n": 1}, error="Traceback: boom")
    store.requeue([job_id])
    run = booked(store, job_id=job_id)
    released(lambda: _silent(store, run))

    as_json = dbdict("show", "--db", location, "--json", str(job_id), cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    record = json.loads(as_json.stdout)
    counts = {name: record[name] for name in ("attempts", "deaths", "failures", "preemptions")}
    assert counts == {"attempts": 4, "deaths": 1, "failures": 1, "preemptions": 2}
    as_text = dbdict("show", "--db", location, str(job_id), cwd=tmp_path)
    assert as_text.returncode == 0, as_text.stderr
    shown = {
        name: re.findall(rf"^\W*{name}\W+(\d+)\W*$", as_text.stdout, re.MULTILINE)
        for name in ("deaths", "failures", "preemptions")
    }
    assert shown == {"deaths": ["1"], "failures": ["1"], "preemptions": ["2"]}
