"""Waiting for a sweep to end: until no job of the table is START or RUNNING."""

from __future__ import annotations

import time
from collections.abc import Callable

from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore

POLL = 2.0
IDLE_AFTER = 30.0  # seconds with jobs waiting and none running before `idle` is called

Progress = Callable[[int, int], None]


def wait(
    store: JobStore,
    timeout: float | None = None,
    poll: float = POLL,
    progress: Progress | None = None,
    idle: Callable[[float], None] | None = None,
) -> dict[Status, int]:
    """Block until the table has nothing left to run; returns the final counts per status.

    `progress(ended, total)` is called after each look at the table. A
    `timeout` (seconds) that runs out raises a DbdictError naming how many
    jobs are still START or RUNNING. Jobs that go back to START (preempted,
    retried) are waited for too: the wait ends only when every job has ended.
    `idle(seconds)` is called once, when jobs have waited IDLE_AFTER seconds with
    none running: most often, no worker is consuming.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    busy_at = time.monotonic()  # when a job was last seen running (or the wait began)
    while True:
        counts = store.counts()
        left = counts[Status.START] + counts[Status.RUNNING]
        total = sum(counts.values())
        if progress is not None:
            progress(total - left, total)
        if left == 0:
            return counts
        if counts[Status.RUNNING]:
            busy_at = time.monotonic()
        elif idle is not None and time.monotonic() - busy_at >= IDLE_AFTER:
            idle(time.monotonic() - busy_at)
            idle = None
        if deadline is not None and time.monotonic() >= deadline:
            jobs = "1 job" if left == 1 else f"{left} jobs"
            raise DbdictError(f"{jobs} still START or RUNNING after {timeout:g} s")
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
