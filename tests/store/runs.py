"""Helpers of the store tests that play a job's runs: book one, and release a dead one."""

from __future__ import annotations

from collections.abc import Callable

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from tests.conftest import wait_until


def booked(store: JobStore, **booking: object) -> Job:
    """A job booked as `store.book(**booking)` books it (failing if none is booked)."""
    job = store.book(**booking)  # type: ignore[arg-type]
    assert job is not None
    return job


def released(release: Callable[[], Status | None]) -> Status:
    """What a release did, once the heartbeat it looks at is in the past by the database's
    clock (the same millisecond is not)."""
    done: list[Status] = wait_until(
        lambda: [status] if (status := release()) is not None else None, "the release"
    )
    return done[0]
