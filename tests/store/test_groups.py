"""A capped group: eight processes racing to book its jobs by id book no more than its cap;
a message that finds it full parks its job; waking sends as many as it has room for."""

from __future__ import annotations

import multiprocessing

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.groups import WAKING
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

EXPERIMENT = "tests.experiments.record"


def _capped(store: JobStore, count: int, cap: int, group: str = "sweep") -> list[int]:
    jobs = [
        NewJob(EXPERIMENT, {"n": n, "group": group}, run_group=group, max_running=cap)
        for n in range(count)
    ]
    ids = [inserted.id for batch in store.insert(jobs) for inserted in batch]
    store.set_task_ids({job_id: f"task-{job_id}" for job_id in ids})
    return ids


def _book(args: tuple[str, int]) -> int | None:
    location, job_id = args
    job = JobStore.open(location).book(job_id, task_id=f"task-{job_id}")
    return None if job is None else job.id


def test_racing_bookings_never_exceed_the_cap(store: JobStore, location: str) -> None:
    """Eight processes book the jobs of a group of cap 3 by id, as eight pool processes
    handed their messages would; again for five groups, each a fresh race."""
    groups = {f"sweep{round_}": _capped(store, 16, cap=3, group=f"sweep{round_}")
              for round_ in range(5)}  # fmt: skip
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for group, ids in groups.items():
            booked = [job for job in pool.map(_book, [(location, i) for i in ids]) if job]
            assert len(booked) == 3, f"group {group}: {len(booked)} booked"
    assert store.counts()[Status.RUNNING] == 15
    parked = [job for job in store.jobs([Status.START]) if job.task_id is None]
    assert len(parked) == 5 * 13, "each message that found its group full parked its job"


def test_a_job_of_another_group_or_none_is_not_held_back(store: JobStore) -> None:
    (full,) = _capped(store, 1, cap=1, group="a")
    (other,) = _capped(store, 1, cap=1, group="b")
    (free,) = [i.id for batch in store.insert([NewJob(EXPERIMENT, {"free": 1})]) for i in batch]
    assert store.book(full, task_id=f"task-{full}") is not None
    assert store.book(other, task_id=f"task-{other}") is not None
    assert store.book(free) is not None


def test_waking_sends_as_many_parked_jobs_as_there_is_room_for(store: JobStore) -> None:
    ids = _capped(store, 6, cap=2)
    for job_id in ids:
        store.book(job_id, task_id=f"task-{job_id}")  # two run, four park
    assert store.wake("sweep") == [], "no room: two run"
    running = store.jobs([Status.RUNNING])
    store.finish(running[0], Status.DONE)
    (woken,) = store.wake("sweep")
    assert woken.task_id == WAKING
    assert woken.id == min(job.id for job in store.jobs([Status.START]))
    assert store.wake("sweep") == [], "its message is on its way: no more room"
    assert store.book(woken.id, task_id="task-woken") is not None
    assert store.counts()[Status.RUNNING] == 2


def test_the_job_table_runner_passes_over_full_groups(store: JobStore) -> None:
    _capped(store, 3, cap=1)
    (free,) = [i.id for batch in store.insert([NewJob(EXPERIMENT, {"free": 1})]) for i in batch]
    first = store.book()
    second = store.book()
    assert first is not None
    assert second is not None
    assert {first.id, second.id} >= {free}
    assert store.book() is None, "the group is full, and nothing else waits"
