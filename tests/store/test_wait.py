"""Waiting for a sweep: `dbdict status --wait`, and its hint when nothing consumes."""

from __future__ import annotations

import pytest

from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store import wait as waiting
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore


def test_jobs_waiting_with_none_running_say_so_once(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in range(2)]))
    monkeypatch.setattr(waiting, "IDLE_AFTER", 0.2)
    said: list[float] = []
    with pytest.raises(DbdictError, match="2 jobs still START or RUNNING"):
        waiting.wait(store, timeout=1.0, poll=0.05, idle=said.append)
    assert len(said) == 1, "once, not at every look"
    assert said[0] >= 0.2


def test_a_running_job_is_not_idle(location: str, monkeypatch: pytest.MonkeyPatch) -> None:
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": 0})]))
    assert store.book() is not None
    monkeypatch.setattr(waiting, "IDLE_AFTER", 0.2)
    said: list[float] = []
    with pytest.raises(DbdictError, match="1 job still START or RUNNING"):
        waiting.wait(store, timeout=1.0, poll=0.05, idle=said.append)
    assert said == [], "a worker is at work: no hint"
    assert store.counts()[Status.RUNNING] == 1
