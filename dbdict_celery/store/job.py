"""A job as the table records it: the small dataclasses the store takes and returns."""

from __future__ import annotations

import enum
import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Any

from dbdict_celery.config import TablePath
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.store.values import decode

DEFAULT_PRIORITY = 1.0
RESTART_PRIORITY = 2.0


class Standing(enum.Enum):
    """What a run's write (a save, a heartbeat) learned of its job.

    Truthy only for OWNED, so `if not store.save(...)` reads "the run should stop".
    A run that is LOST must not touch the job's files any more: another run may own them.
    """

    OWNED = "owned"  # the write landed: the job is still this run's
    STOP_ASKED = "stop asked"  # the write landed, and a cancel asks the run to stop
    LOST = "lost"  # nothing landed: the job was cancelled, finished or taken over

    def __bool__(self) -> bool:
        return self is Standing.OWNED


def job_dir(exproot: str, path: TablePath, job_id: int) -> Remote:
    """Where a job keeps its files: `EXPROOT/dbname/tablename/ID`."""
    return Remote.parse(exproot).join(path.dbname, path.table, str(job_id))


def param_hash(experiment: str, params: dict[str, Any]) -> str:
    """A stable identity for (experiment, flattened params): key order does not matter.

    Hashes the `repr` of the sorted items, so `1`, `1.0`, `'1'`, `(1,)` and
    `[1]` stay different parameters, as they are in the text form.
    """
    text = repr((experiment, sorted(params.items())))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class NewJob:
    """A job to insert: an experiment and its parameters, flattened (see `params.flatten`)."""

    experiment: str
    params: dict[str, Any]
    priority: float = DEFAULT_PRIORITY
    exproot: str | None = None
    queue: str | None = None  # the Celery queue its messages go to; None: the default one
    study: str | None = None  # a trial of this optimize study...
    trial: int | None = None  # ...numbered so
    limits: dict[str, Any] | None = None  # its limits (`Limits.record()`), if it has any
    run_group: str | None = None  # the group whose running jobs...
    max_running: int | None = None  # ...may be at most so many

    @functools.cached_property
    def param_hash(self) -> str:
        """The job's identity in the table (computed once: it is hashed on every insert).

        A trial's is its study and number, not its parameters: a sampler may ask for the
        same parameters twice, and two drivers of one study cannot both add its trial N."""
        if self.study is not None:
            return param_hash("", {"study": self.study, "trial": self.trial})
        return param_hash(self.experiment, self.params)


@dataclass(frozen=True)
class Inserted:
    """The outcome of inserting one NewJob: its row id, and whether it was already there."""

    id: int
    job: NewJob
    created: bool


@dataclass(frozen=True)
class Job:
    """One row of the job table."""

    id: int
    status: Status
    priority: float
    experiment: str
    params: dict[str, Any]
    state: dict[str, Any]
    param_hash: str
    attempts: int = 0
    run_id: str | None = None
    host: str | None = None
    pid: int | None = None
    workdir: str | None = None
    exproot: str | None = None
    task_id: str | None = None
    cancel_requested: bool = False
    heartbeat_at: datetime | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    queue: str | None = None
    study: str | None = None  # the optimize study it is a trial of
    trial: int | None = None  # its number in that study, from 0
    prune_requested: bool = False
    limits: dict[str, Any] | None = None  # as `Limits.record()` gives them; None: no limits
    run_group: str | None = None  # the group of jobs it runs in (`--group`)...
    max_running: int | None = None  # ...of which at most this many may run at once
    sole_task_id: str | None = None  # while START: the only message that may book it
    tags: str | None = None  # the names of its tags, between single spaces (`tags.py`)
    note: str | None = None  # what a user wrote of it (`dbdict note`)
    queued_at: datetime | None = None  # when it was last put back to START, if ever

    @classmethod
    def from_row(cls, row: Any) -> Job:
        """Build a Job from a result row of the job table."""
        values = dict(row._mapping)
        values["status"] = Status(values["status"])
        values["params"] = decode(values["params"])
        values["state"] = decode(values["state"])
        for name in TIMESTAMPS:
            if values[name] is not None:
                values[name] = utc(values[name])
        values["tags"] = (values["tags"] or "").strip() or None  # as shown: `baseline old`
        return cls(**values)


TIMESTAMPS = ("heartbeat_at", "created_at", "started_at", "finished_at", "queued_at")


def utc(moment: datetime) -> datetime:
    """A timestamp from the database, saying it is UTC: SQLite keeps no zone, and its
    timestamps (CURRENT_TIMESTAMP's) are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# The columns a job is listed, shown, sorted, exported and viewed with, beside the keys of its
# state: every column but `params` and `state` (shown as keys), the internal `param_hash`,
# `run_id` and `sole_task_id`, and `limits` (shown by `dbdict show`). A state key named
# like one of these is `state.KEY` wherever both appear.
JOB_COLUMNS = tuple(
    field.name
    for field in fields(Job)
    if field.name not in ("params", "state", "param_hash", "run_id", "limits", "sole_task_id")
)


def shown_key(key: str) -> str:
    """A state key as it is named beside the job columns (in lists, exports, filters and
    sorts): `state.KEY` when a column has its name, so the two are never confused."""
    return f"state.{key}" if key in JOB_COLUMNS else key


def state_key(name: str) -> str | None:
    """The state key a user's name means (the inverse of `shown_key`), or None when the name
    is a job column."""
    if name in JOB_COLUMNS:
        return None
    prefix, _, rest = name.partition(".")
    return rest if prefix == "state" and rest in JOB_COLUMNS else name


def default_columns(jobs: Sequence[Job]) -> list[str]:
    """id and status, tags and note if any job has them, the parameters, then what the runs
    added to the state (results): each group in alphabetical order, the same whatever order
    the jobs' keys came in."""
    params: dict[str, None] = {}
    added: dict[str, None] = {}
    for job in jobs:
        params.update(dict.fromkeys(job.params))
    for job in jobs:
        added.update(dict.fromkeys(key for key in job.state if key not in params))
    said = [name for name in ("tags", "note") if any(getattr(job, name) for job in jobs)]
    return ["id", "status", *said, *map(shown_key, sorted(params)), *map(shown_key, sorted(added))]


def value_of(job: Job, column: str) -> Any:
    """A row column, else a key of the job's flattened state (None if it has none)."""
    key = state_key(column)
    if key is None:
        value = getattr(job, column)
        return value.name if column == "status" else value
    return job.state.get(key)
