"""The groups part of JobStore: at most `max_running` jobs of a group RUNNING at once.

A job of a capped group is booked only while its group has room, counted in the
statement that books it. On Postgres the bookings of one group take turns (a
transaction-level advisory lock on the table and group, taken first thing in a READ
COMMITTED transaction, so that the count sees every booking before it); on SQLite every
writing transaction takes turns already.

A message that finds its group full books nothing and *parks* its job: START, its
`task_id` PARKED, not booked, not counted. Whenever a run of the group ends, its worker
wakes as many parked jobs as the group has room for (a message each, its id recorded
before it is sent, so two wakers never pick the same job), and so does every reconcile
pass, which parks too the group's jobs whose message is gone. A message too many is
harmless: the booking keeps the cap, and the job parks again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from sqlalchemy import ColumnElement, Connection, func, literal, select, text, update

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.tables import StorePart

PARKED = "parked"  # the task id of a job that waits for room in its group, with no message


class Groups(StorePart):
    """Capped groups of jobs: room to book, parking, waking."""

    def room_in_group(self) -> ColumnElement[bool]:
        """Whether the job table's row has room in its group, in SQL: it is in no capped
        group, or fewer of its group's jobs than its cap are RUNNING."""
        t = self.table
        r = t.alias("running")
        running = (
            select(func.count())
            .where(r.c.run_group == t.c.run_group, r.c.status == Status.RUNNING)
            .scalar_subquery()
        )
        return t.c.max_running.is_(None) | (running < t.c.max_running)

    @contextlib.contextmanager
    def group_turn(self, group: str) -> Iterator[Connection]:
        """A transaction in which no other books or wakes jobs of `group` (see above)."""
        with self.tables.transaction() as connection:
            if self.dialect == "postgresql":
                connection.execute(text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED"))
                key = func.hashtextextended(literal(f"{self.path.table}/{group}"), 0)
                connection.execute(select(func.pg_advisory_xact_lock(key)))
            yield connection

    def group_of(self, connection: Connection, job_id: int) -> str | None:
        """The capped group of job `job_id` if it is START (None otherwise)."""
        t = self.table
        return connection.scalar(
            select(t.c.run_group).where(
                t.c.id == job_id, t.c.status == Status.START, t.c.max_running.is_not(None)
            )
        )

    def group_cap(self, group: str) -> int | None:
        """The cap of the jobs of `group` already in the table (None: it has none)."""
        t = self.table
        query = select(func.min(t.c.max_running)).where(t.c.run_group == group)
        with self.tables.transaction(read_only=True) as connection:
            cap: int | None = connection.scalar(query)
            return cap

    def park(self, connection: Connection, job_id: int) -> None:
        """Leave START job `job_id` PARKED: its group is full, and its message is dropped
        (a message sent for it since is harmless: it books, or parks the job again)."""
        t = self.table
        connection.execute(
            update(t)
            .where(t.c.id == job_id, t.c.status == Status.START)
            .values(task_id=PARKED, sole_task_id=None)
        )

    def wake(self, group: str, task_id: Callable[[int], str]) -> list[Job]:
        """The parked jobs of `group` to send a message to now, highest priority first, as
        many as it has room for, each given the id `task_id(job_id)` of the message the
        caller is to send it (recorded first: a message taken at once parks its job again
        if it must). `unwake` takes back those the caller could not send."""
        t = self.table
        mine = t.c.run_group == group
        with self.group_turn(group) as connection:
            cap, running = connection.execute(
                select(
                    func.min(t.c.max_running), func.count().filter(t.c.status == Status.RUNNING)
                ).where(mine, t.c.status.in_([Status.START, Status.RUNNING]))
            ).one()
            room = (cap or 0) - running
            if room <= 0:
                return []
            parked = connection.execute(
                select(t.c.id)
                .where(mine, t.c.status == Status.START, t.c.task_id == PARKED)
                .order_by(t.c.priority.desc(), t.c.id)
                .limit(room)
            ).scalars()
            woken = []
            for job_id in parked:
                row = connection.execute(
                    update(t)
                    .where(t.c.id == job_id)
                    .values(task_id=task_id(job_id))
                    .returning(*t.c)
                ).one()
                woken.append(Job.from_row(row))
            return woken

    def unwake(self, jobs: list[Job]) -> None:
        """Park again jobs `wake` gave, whose messages could not be sent."""
        t = self.table
        with self.tables.transaction() as connection:
            for job in jobs:
                connection.execute(
                    update(t)
                    .where(t.c.id == job.id, t.c.status == Status.START, t.c.task_id == job.task_id)
                    .values(task_id=PARKED)
                )

    def park_unsent(self, job_ids: list[int]) -> list[str]:
        """Park the START jobs of capped groups among `job_ids` (reconcile found no message
        for them); the groups they are in."""
        t = self.table
        if not job_ids:
            return []
        with self.tables.transaction() as connection:
            parked = connection.execute(
                update(t)
                .where(
                    t.c.id.in_(job_ids),
                    t.c.status == Status.START,
                    t.c.max_running.is_not(None),
                )
                .values(task_id=PARKED, sole_task_id=None)
                .returning(t.c.run_group)
            ).scalars()
            return sorted(set(parked))

    def parked_groups(self) -> list[str]:
        """The capped groups with parked jobs."""
        t = self.table
        query = (
            select(t.c.run_group)
            .where(t.c.status == Status.START, t.c.task_id == PARKED)
            .distinct()
        )
        with self.tables.transaction(read_only=True) as connection:
            return sorted(connection.scalars(query))
