"""The small JSON documents open pages poll to follow a running sweep without reloading.

Each is a few rows read by id or from the status index: cheap enough to ask every
second or two, from every open page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore

MAX_WATCHED = 500  # ids one poll may ask about: the largest grid page


def table_news(store: JobStore, ids: Sequence[int]) -> dict[str, Any]:
    """The table's counts by status, and the status and attempts of the jobs `ids`
    (the rows of a grid page)."""
    if len(ids) > MAX_WATCHED:
        raise UsageError(f"at most {MAX_WATCHED} ids at a time")
    counts = store.counts()
    jobs = store.jobs(ids=list(ids)) if ids else []
    return {
        "counts": {status.name: counts[status] for status in Status},
        "total": sum(counts.values()),
        "jobs": {
            str(job.id): {"status": job.status.name, "attempts": job.attempts} for job in jobs
        },
    }


def job_news(store: JobStore, job_id: int) -> dict[str, Any]:
    """One job's status, runs and the last step of each curve: the job page reloads itself
    when any of them changed."""
    job = store.get(job_id)
    curves = store.curve_summaries(job_id)
    return {
        "id": job.id,
        "status": job.status.name,
        "attempts": job.attempts,
        "host": job.host,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "curves": {key: curve.last_step for key, curve in curves.items()},
    }


def job_ids(values: Sequence[str]) -> list[int]:
    """The ids of repeated `id` query parameters (as a form of checkboxes sends them), each
    once, in the order given; UsageError for anything but an id."""
    wrong = [value for value in values if not value.strip().isdigit()]
    if wrong:
        raise UsageError(f"not a job id: {wrong[0]!r}")
    return list(dict.fromkeys(int(value) for value in values))
