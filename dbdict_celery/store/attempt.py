"""One run of a job, as its attempt table records it: where, with what, and how it ended."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from dbdict_celery.experiment.provenance import UNKNOWN
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import utc


class AttemptOutcome(str, enum.Enum):
    """How a run ended. A run still going on has none yet."""

    DONE = "done"
    INCOMPLETE = "incomplete"  # stopped (preempted, or returned INCOMPLETE): resumable
    FAILED = "failed"
    CANCELLED = "cancelled"
    PRUNED = "pruned"  # stopped early by optimize's pruner
    LOST = "lost"  # its process died or went silent: found by reconcile or its worker
    GIVEN_BACK = "given back"  # booked where it could not start: not counted as an attempt

    @classmethod
    def of(cls, status: Status) -> AttemptOutcome:
        """The outcome of a run that left its job in `status`."""
        return OUTCOME_OF_STATUS[status]


RUNNING = "running"  # how a run without an outcome yet is named, shown and filtered on

OUTCOME_OF_STATUS = {
    Status.DONE: AttemptOutcome.DONE,
    Status.START: AttemptOutcome.INCOMPLETE,
    Status.FAILED: AttemptOutcome.FAILED,
    Status.CANCELLED: AttemptOutcome.CANCELLED,
    Status.PRUNED: AttemptOutcome.PRUNED,
}


class StopReason:
    """Why a run stopped before its experiment returned, as its attempt records it. A signal
    that reached the run itself is recorded by its name (SIGTERM, SIGINT)."""

    REVOKE = "revoke"  # its Celery task was revoked (`dbdict cancel` revokes too)
    SHUTDOWN = "worker shutdown"  # its worker was asked to stop (SIGTERM, a preemption)
    CANCEL = "cancel request"  # the row said a cancel (or its pruner) asked it to stop
    TAKEN_OVER = "taken over"  # the row said the job is no longer this run's
    STALE = "stale heartbeat"  # reconcile found it silent: lost
    DIED = "process died"  # its worker found its process gone: lost
    KILLED = "killed after the grace period"  # its worker killed it at shutdown: lost
    TIME_LIMIT = "time limit"  # it reached its job's --time-limit
    OUT_OF_MEMORY = "out of memory"  # its processes held more than its job's --memory


@dataclass(frozen=True)
class RunCounts:
    """How a job's ended runs count against its limits, each kind apart.

    A death (a run lost to a dead worker or process: silent, or found dead) uses up the
    lost-run limit (`LOST_RUNS`, `reconcile --max-attempts`), so that a job that kills its
    worker does not loop forever. A failure (the experiment raised) uses up the retries
    (`DBDICT_MAX_ATTEMPTS`). A preemption (a run stopped from outside, that ended
    resumable: a shutdown, a signal, a revoke, or killed by its worker after the grace
    period) uses up nothing: it is no fault of the job's. A run that returned INCOMPLETE
    by itself, was given back, ended done or cancelled, or whose end was not recorded, is
    none of the three.
    """

    deaths: int = 0
    failures: int = 0
    preemptions: int = 0


@dataclass(frozen=True)
class Attempt:
    """One row of an attempt table."""

    id: int
    job_id: int
    attempt: int
    run_id: str
    started_at: datetime
    task_id: str | None = None
    worker: str | None = None
    host: str | None = None
    pid: int | None = None
    finished_at: datetime | None = None
    outcome: AttemptOutcome | None = None
    reason: str | None = None
    error: str | None = None
    code_commit: str | None = None
    code_branch: str | None = None
    code_dirty: bool | None = None
    code_repository: str | None = None
    python: str | None = None
    platform: str | None = None
    environment: str | None = None
    variables: dict[str, str] = field(default_factory=dict)
    hardware: dict[str, Any] = field(default_factory=dict)
    devices: str | None = None  # the GPUs it ran with (CUDA_VISIBLE_DEVICES), if given any

    @classmethod
    def from_row(cls, row: Any) -> Attempt:
        """Build an Attempt from a result row of an attempt table."""
        values = dict(row._mapping)
        for name in ("started_at", "finished_at"):
            if values[name] is not None:
                values[name] = utc(values[name])
        if values["outcome"] is not None:
            values["outcome"] = AttemptOutcome(values["outcome"])
        values["variables"] = values["variables"] or {}
        values["hardware"] = values["hardware"] or {}
        return cls(**values)

    @property
    def ended_as(self) -> str:
        """The outcome's name, or `running` while the run goes on."""
        return self.outcome.value if self.outcome else RUNNING

    @property
    def code(self) -> str:
        """The code in a few characters: `3f2a9c1d0e (main), dirty`, or "unknown"."""
        if not self.code_commit or self.code_commit == UNKNOWN:
            return UNKNOWN if self.code_commit else ""
        dirty = ", dirty" if self.code_dirty else ""
        return f"{self.code_commit[:10]} ({self.code_branch}){dirty}"
