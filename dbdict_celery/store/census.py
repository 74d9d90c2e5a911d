"""The census part of JobStore: a table's numbers at one moment, for monitoring and for the
dashboard's overview.

What a Prometheus scrape or an autoscaler asks every few seconds: how many jobs wait
in each queue and since when, how many run on each host, how the runs so far ended.
All of it is read in one transaction, from the table (the record), never from the
broker: a message a worker prefetched has left the broker's queue while its job still
waits, and a job put back by reconcile or parked by its group's cap may have no
message at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, func, or_, select

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import utc
from dbdict_celery.store.tables import StorePart

RECENT_HOURS = 24  # the span of the jobs-per-hour bars
WORKERS_SEEN_WITHIN = 3600.0  # seconds: a worker that started or ended a run since is listed
ENDED = (Status.DONE, Status.FAILED, Status.CANCELLED, Status.PRUNED)


def waiting_since(t: Table) -> ColumnElement[Any]:
    """Since when a START job has waited: since it was put back to START (by a requeue, or
    its last run's end), else since it was added."""
    return func.coalesce(t.c.queued_at, t.c.created_at)


@dataclass(frozen=True)
class Census:
    """One table's numbers; a queue of None is the default queue."""

    jobs: dict[tuple[Status, str | None], int]  # by status and queue (only those > 0)
    oldest_waiting: dict[str | None, float]  # seconds the oldest START job of a queue waited
    running_by_host: dict[str, int]
    attempts: dict[str, int]  # ended runs, by outcome
    repairs: int  # runs reconcile found silent and put back (reason "stale heartbeat")


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


class Counting(StorePart):
    """Counting the table for monitoring and the dashboard."""

    def census(self) -> Census:
        """The table's numbers now, by the database's clock.

        A START job has waited since it was last put back to START, else since it was
        added (`waiting_since`).
        """
        t, a = self.table, self.attempt_table
        since = waiting_since(t)
        waiting = (
            select(t.c.queue, func.min(since)).where(t.c.status == Status.START).group_by(t.c.queue)
        )
        hosts = (
            select(t.c.host, func.count()).where(t.c.status == Status.RUNNING).group_by(t.c.host)
        )
        ended = select(a.c.outcome, func.count()).where(a.c.outcome.is_not(None))
        repairs = select(func.count()).where(a.c.reason == StopReason.STALE)
        with self.tables.transaction(read_only=True) as connection:
            jobs = self._by_status_and_queue(connection)
            now = utc(connection.execute(select(func.now())).scalar_one())
            oldest = {
                queue: max(0.0, (now - utc(first)).total_seconds())
                for queue, first in connection.execute(waiting)
                if first is not None
            }
            running = {str(host or "?"): int(n) for host, n in connection.execute(hosts)}
            outcomes = {
                str(outcome): int(n)
                for outcome, n in connection.execute(ended.group_by(a.c.outcome))
            }
            repaired = int(connection.scalar(repairs) or 0)
        return Census(jobs, oldest, running, outcomes, repaired)

    def _by_status_and_queue(self, connection: Connection) -> dict[tuple[Status, str | None], int]:
        t = self.table
        query = select(t.c.status, t.c.queue, func.count()).group_by(t.c.status, t.c.queue)
        return {(Status(s), queue): int(n) for s, queue, n in connection.execute(query)}

    def overview(self) -> Overview:
        """The table at a glance, for the dashboard: jobs by queue and status, jobs ended in
        each of the last RECENT_HOURS hours, the workers seen lately, the job waiting longest."""
        t, a = self.table, self.attempt_table
        hour = _hour(self.dialect, t.c.finished_at)
        per_hour = (
            select(hour, func.count())
            .where(t.c.finished_at >= self.tables.ago(RECENT_HOURS * 3600))
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
                    a.c.started_at >= self.tables.ago(WORKERS_SEEN_WITHIN),
                    a.c.finished_at >= self.tables.ago(WORKERS_SEEN_WITHIN),
                )
            )
            .group_by(a.c.worker, a.c.host)
            .order_by(seen.desc())
        )
        since = waiting_since(t)
        waiting = (
            select(t.c.id, since.label("since"))
            .where(t.c.status == Status.START)
            .order_by(since, t.c.id)
            .limit(1)
        )
        by_queue: dict[str | None, dict[Status, int]] = {}
        with self.tables.transaction(read_only=True) as connection:
            for (status, queue), count in self._by_status_and_queue(connection).items():
                by_queue.setdefault(queue, {})[status] = count
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
            oldest_waiting=None if oldest is None else (oldest.id, utc(oldest.since)),
            now=now,
        )


def _hour(dialect: str, moment: ColumnElement[Any]) -> ColumnElement[Any]:
    """`moment` cut down to its hour of UTC, in the database's own terms."""
    if dialect == "postgresql":
        return func.date_trunc("hour", func.timezone("UTC", moment))
    return func.strftime("%Y-%m-%d %H:00:00", moment)


def _as_hour(moment: datetime | str) -> datetime:
    """An hour as the database gave it (SQLite: text), as an aware datetime."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return utc(moment).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)
