"""A capped group: processes racing to book its jobs by id book no more than its cap; a
message that finds it full parks its job; waking sends as many as it has room for; and no
path leaves a parked job or its group stuck."""

from __future__ import annotations

import multiprocessing

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.groups import PARKED
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore

EXPERIMENT = "tests.experiments.record"


def _capped(store: JobStore, count: int, cap: int, group: str = "sweep") -> list[int]:
    """`count` jobs of `group`, each sent a message `task-ID`."""
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


def _task_id(job_id: int) -> str:
    return f"woken-{job_id}"


def _parked(store: JobStore) -> list[int]:
    return [job.id for job in store.jobs([Status.START]) if job.task_id == PARKED]


def test_racing_bookings_never_exceed_the_cap(store: JobStore, location: str) -> None:
    """Eight processes book the jobs of a group of cap 3 by id, as eight pool processes
    handed their messages would; again for five groups, each a fresh race. (On Postgres,
    without the group's lock this fails: the counts race.)"""
    groups = {f"sweep{round_}": _capped(store, 16, cap=3, group=f"sweep{round_}")
              for round_ in range(5)}  # fmt: skip
    with multiprocessing.get_context("fork").Pool(8) as pool:
        for group, ids in groups.items():
            booked = [job for job in pool.map(_book, [(location, i) for i in ids]) if job]
            assert len(booked) == 3, f"group {group}: {len(booked)} booked"
    assert store.counts()[Status.RUNNING] == 15
    assert len(_parked(store)) == 5 * 13, "each message that found its group full parked"


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
    assert store.wake("sweep", _task_id) == [], "no room: two run"
    running = store.jobs([Status.RUNNING])
    store.finish(running[0], Status.DONE)
    (woken,) = store.wake("sweep", _task_id)
    assert woken.task_id == f"woken-{woken.id}", "its message's id, recorded before it is sent"
    assert woken.id < min(_parked(store)), "the oldest of equal priority first"
    assert store.book(woken.id, task_id=woken.task_id) is not None
    assert store.counts()[Status.RUNNING] == 2


def test_a_message_taken_before_its_id_was_recorded_leaves_its_job_parked(
    store: JobStore,
) -> None:
    """A worker may take a message before `schedule` records its id: the job it parks stays
    parked (for its group to wake), rather than look as if its message were on its way."""
    jobs = [NewJob(EXPERIMENT, {"n": n}, run_group="g", max_running=1) for n in range(2)]
    first, second = [inserted.id for batch in store.insert(jobs) for inserted in batch]
    assert store.book(first, task_id="task-a") is not None
    assert store.book(second, task_id="task-b") is None, "full: parked"
    store.set_task_ids({first: "task-a", second: "task-b"})  # recorded after
    assert _parked(store) == [second]


def test_a_job_given_a_priority_while_parked_is_woken_and_booked(store: JobStore) -> None:
    first, second = _capped(store, 2, cap=1)
    running = store.book(first, task_id=f"task-{first}")
    assert running is not None
    assert store.book(second, task_id=f"task-{second}") is None
    store.reprioritize([second], 5.0)
    store.set_task_ids({second: "task-priority"}, sole=True)
    assert store.book(second, task_id="task-priority") is None, "still full: parked again"
    store.finish(running, Status.DONE)
    (woken,) = store.wake("sweep", _task_id)
    assert store.book(woken.id, task_id=woken.task_id) is not None, "its sole message is gone"


def test_a_message_resent_after_a_priority_change_still_books(store: JobStore) -> None:
    """Reconcile sends a job again when its message is lost, `dbdict priority`'s too."""
    (job_id,) = [i.id for batch in store.insert([NewJob(EXPERIMENT, {"k": 1})]) for i in batch]
    store.set_task_ids({job_id: "task-priority"}, sole=True)
    store.set_task_ids({job_id: "task-resent"})  # reconcile: no message found
    assert store.book(job_id, task_id="task-resent") is not None


def test_a_cancelled_job_requeued_is_booked_by_its_new_message(store: JobStore) -> None:
    (job_id,) = [i.id for batch in store.insert([NewJob(EXPERIMENT, {"k": 2})]) for i in batch]
    store.set_task_ids({job_id: "task-priority"}, sole=True)
    store.cancel([job_id])
    (requeued,) = store.requeue([job_id])
    assert requeued.task_id is None
    assert requeued.sole_task_id is None
    assert store.book(job_id, task_id="task-requeued") is not None


def test_the_job_table_runner_passes_over_full_groups(store: JobStore) -> None:
    _capped(store, 3, cap=1)
    (free,) = [i.id for batch in store.insert([NewJob(EXPERIMENT, {"free": 1})]) for i in batch]
    first = store.book()
    second = store.book()
    assert first is not None
    assert second is not None
    assert {first.id, second.id} >= {free}
    assert store.book() is None, "the group is full, and nothing else waits"
