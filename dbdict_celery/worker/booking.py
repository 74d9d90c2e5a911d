"""A job this process booked: the row as booked, and what the run knows of itself."""

from __future__ import annotations

from dataclasses import dataclass

from dbdict_celery.experiment.provenance import Environment
from dbdict_celery.store.job import Job


@dataclass(frozen=True)
class Booking:
    """A job this process booked, and when (`time.monotonic()`) the booking was sent: the
    run's lease on the job's files counts from then, never from when the reply came."""

    job: Job
    sent: float
    exproot: str | None = None  # where this runner keeps the files of a job that names none
    worker: str | None = None  # the Celery worker's name, if a Celery worker runs it
    environment: Environment | None = None  # this process's, if capture is on
    devices: tuple[str, ...] | None = None  # the GPUs the run has; None: the worker has none
