"""Waiting for a sweep to end: until no job of the table is START or RUNNING."""

from __future__ import annotations

import time
from collections.abc import Callable

from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore

POLL = 2.0

Progress = Callable[[int, int], None]


def wait(
    store: JobStore,
    timeout: float | None = None,
    poll: float = POLL,
    progress: Progress | None = None,
) -> dict[Status, int]:
    """Block until the table has nothing left to run; returns the final counts per status.

    `progress(ended, total)` is called after each look at the table. A
    `timeout` (seconds) that runs out raises a DbdictError naming how many
    jobs are still START or RUNNING. Jobs that go back to START (preempted,
    retried) are waited for too: the wait ends only when every job has ended.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        counts = store.counts()
        left = counts[Status.START] + counts[Status.RUNNING]
        total = sum(counts.values())
        if progress is not None:
            progress(total - left, total)
        if left == 0:
            return counts
        if deadline is not None and time.monotonic() >= deadline:
            raise DbdictError(f"{left} jobs still START or RUNNING after {timeout:g} s")
        time.sleep(poll if deadline is None else max(0.0, min(poll, deadline - time.monotonic())))
