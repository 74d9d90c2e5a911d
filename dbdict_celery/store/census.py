"""The census part of JobStore: a table's numbers at one moment, for monitoring.

What a Prometheus scrape or an autoscaler asks every few seconds: how many jobs wait
in each queue and since when, how many run on each host, how the runs so far ended.
All of it is read in one transaction, from the table (the record), never from the
broker: a message a worker prefetched has left the broker's queue while its job still
waits, and a job put back by reconcile or parked by its group's cap may have no
message at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import utc
from dbdict_celery.store.tables import StorePart


@dataclass(frozen=True)
class Census:
    """One table's numbers; a queue of None is the default queue."""

    jobs: dict[tuple[Status, str | None], int]  # by status and queue (only those > 0)
    oldest_waiting: dict[str | None, float]  # seconds the oldest START job of a queue waited
    running_by_host: dict[str, int]
    attempts: dict[str, int]  # ended runs, by outcome
    repairs: int  # runs reconcile found silent and put back (reason "stale heartbeat")


class Counting(StorePart):
    """Counting the table for monitoring."""

    def census(self) -> Census:
        """The table's numbers now, by the database's clock.

        A START job has waited since it was added or, if it ran before, since its last
        run last reported (its heartbeat): a requeued job is not counted as waiting for
        the whole time it spent running.
        """
        t, a = self.table, self.attempt_table
        since = func.coalesce(t.c.heartbeat_at, t.c.created_at)
        by_status = select(t.c.status, t.c.queue, func.count()).group_by(t.c.status, t.c.queue)
        waiting = (
            select(t.c.queue, func.min(since)).where(t.c.status == Status.START).group_by(t.c.queue)
        )
        hosts = (
            select(t.c.host, func.count()).where(t.c.status == Status.RUNNING).group_by(t.c.host)
        )
        ended = select(a.c.outcome, func.count()).where(a.c.outcome.is_not(None))
        repairs = select(func.count()).where(a.c.reason == StopReason.STALE)
        with self.tables.transaction(read_only=True) as connection:
            jobs = {(Status(s), queue): int(n) for s, queue, n in connection.execute(by_status)}
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
