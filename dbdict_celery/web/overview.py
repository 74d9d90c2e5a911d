"""One job table at a glance: what the overview page shows.

Where a sweep stands (how many jobs in each status and queue, how many are done), how
fast it goes (jobs ended per hour lately), who runs it (the workers seen lately) and
what waits longest. Read in one transaction, by the database's clock, never this
machine's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import utc
from dbdict_celery.store.store import JobStore

RECENT_HOURS = 24  # the span of the jobs-per-hour bars
WORKERS_SEEN_WITHIN = 3600.0  # seconds: a worker that started or ended a run since is listed
ENDED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.PRUNED)


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that ran something lately: its name, host, runs, and when it was last seen."""

    worker: str
    host: str
    runs: int
    running: int
    last_seen: datetime


@dataclass(frozen=True)
class Overview:
    """The numbers of the overview page."""

    by_queue: dict[str | None, dict[Status, int]]
    per_hour: list[tuple[datetime, int]]  # the last RECENT_HOURS hours, oldest first
    workers: list[WorkerSeen]
    oldest_waiting: tuple[int, datetime] | None  # the START job added first: id, when
    now: datetime

    def total(self, status: Status | None = None) -> int:
        """How many jobs (in `status`, if given), over every queue."""
        return sum(
            count
            for counts in self.by_queue.values()
            for counted, count in counts.items()
            if status is None or counted is status
        )

    @property
    def ended(self) -> int:
        """How many jobs will not run again unless requeued."""
        return sum(self.total(status) for status in ENDED)

    @property
    def progress(self) -> float:
        """The share of the jobs that ended, from 0 to 1 (1 for an empty table)."""
        total = self.total()
        return self.ended / total if total else 1.0


def overview(store: JobStore) -> Overview:
    """The overview of a job table now."""
    t, a = store.table, store.attempt_table
    hour = _hour(store, t.c.finished_at)
    per_hour = (
        select(hour, func.count())
        .where(t.c.finished_at >= store.tables.ago(RECENT_HOURS * 3600))
        .group_by(hour)
    )
    seen = func.max(func.coalesce(a.c.finished_at, a.c.started_at))
    workers = (
        select(
            a.c.worker,
            a.c.host,
            func.count(),
            func.count().filter(a.c.outcome.is_(None)),
            seen,
        )
        .where(
            or_(
                a.c.started_at >= store.tables.ago(WORKERS_SEEN_WITHIN),
                a.c.finished_at >= store.tables.ago(WORKERS_SEEN_WITHIN),
            )
        )
        .group_by(a.c.worker, a.c.host)
        .order_by(seen.desc())
    )
    waiting = (
        select(t.c.id, t.c.created_at)
        .where(t.c.status == Status.START)
        .order_by(t.c.created_at, t.c.id)
        .limit(1)
    )
    by_queue: dict[str | None, dict[Status, int]] = {}
    with store.tables.transaction(read_only=True) as connection:
        grouped = select(t.c.queue, t.c.status, func.count()).group_by(t.c.queue, t.c.status)
        for queue, status, count in connection.execute(grouped):
            by_queue.setdefault(queue, {})[Status(status)] = int(count)
        ended = {_as_hour(moment): int(count) for moment, count in connection.execute(per_hour)}
        seen_rows = [
            WorkerSeen(worker or "?", host or "?", int(runs), int(running), utc(last))
            for worker, host, runs, running, last in connection.execute(workers)
        ]
        oldest = connection.execute(waiting).first()
        now = utc(connection.execute(select(func.now())).scalar_one())
    start = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=RECENT_HOURS - 1)
    hours = [start + timedelta(hours=n) for n in range(RECENT_HOURS)]
    return Overview(
        by_queue=dict(sorted(by_queue.items(), key=lambda item: item[0] or "")),
        per_hour=[(moment, ended.get(moment, 0)) for moment in hours],
        workers=seen_rows,
        oldest_waiting=None if oldest is None else (oldest.id, utc(oldest.created_at)),
        now=now,
    )


def _hour(store: JobStore, moment: ColumnElement[Any]) -> ColumnElement[Any]:
    """`moment` cut down to its hour, in the database's own terms."""
    if store.dialect == "postgresql":
        return func.date_trunc("hour", moment)
    return func.strftime("%Y-%m-%d %H:00:00", moment)


def _as_hour(moment: datetime | str) -> datetime:
    """An hour as the database gave it (SQLite: text), as an aware datetime."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return utc(moment).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
