"""The groups part of JobStore: at most `max_running` jobs of a group RUNNING at once.

A job of a capped group is booked only while its group has room, counted in the
same statement that books it. On Postgres, bookings of one group take turns (a
transaction-level advisory lock on the table and group, taken before the count), so
two workers never both take the last place; on SQLite every writing transaction
takes turns already.

A message that finds its group full books nothing: its job is *parked* (START, no
message: its `task_id` cleared) and costs no one anything while it waits. Whenever a
run of the group ends, its worker wakes as many parked jobs as the group has room
for, counting the messages still on their way (START jobs with a task id); reconcile
does the same, and parks the jobs whose message was lost, so a group whose waker
died is woken within a pass.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, select, update

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.tables import StorePart

WAKING = "waking"  # the task id of a woken job until its message's own is recorded


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

    def take_turns(self, connection: Connection, group: str) -> None:
        """Wait, in the caller's transaction, until no other transaction books or wakes jobs
        of `group` (Postgres; SQLite's writes take turns already)."""
        if self.dialect == "postgresql":
            key = func.hashtextextended(literal(f"{self.path.table}/{group}"), 0)
            connection.execute(select(func.pg_advisory_xact_lock(key)))

    def group_of(self, connection: Connection, job_id: int) -> str | None:
        """The capped group of job `job_id` if it is START (None otherwise)."""
        t = self.table
        return connection.scalar(
            select(t.c.run_group).where(
                t.c.id == job_id, t.c.status == Status.START, t.c.max_running.is_not(None)
            )
        )

    def park(self, connection: Connection, job_id: int, task_id: str | None) -> None:
        """Leave job `job_id` without a message while its group is full (its message, task
        `task_id`, is dropped): unless another message was sent for it since."""
        t = self.table
        mine = t.c.task_id.in_([WAKING] if task_id is None else [task_id, WAKING])
        connection.execute(
            update(t).where(t.c.id == job_id, t.c.status == Status.START, mine).values(task_id=None)
        )

    def wake(self, group: str) -> list[Job]:
        """The parked jobs of `group` to send a message to now, highest priority first: as
        many as it has room for, less the messages on their way. They are marked WAKING,
        so that two wakers never pick the same; the caller sends them and records their
        task ids."""
        t = self.table
        mine = t.c.run_group == group
        with self.tables.transaction() as connection:
            self.take_turns(connection, group)
            counts = connection.execute(
                select(
                    func.min(t.c.max_running),
                    func.count().filter(t.c.status == Status.RUNNING),
                    func.count().filter((t.c.status == Status.START) & t.c.task_id.is_not(None)),
                ).where(mine, t.c.status.in_([Status.START, Status.RUNNING]))
            ).one()
            cap, running, on_their_way = counts
            room = (cap or 0) - running - on_their_way
            if room <= 0:
                return []
            parked = (
                select(t.c.id)
                .where(mine, t.c.status == Status.START, t.c.task_id.is_(None))
                .order_by(t.c.priority.desc(), t.c.id)
                .limit(room)
            )
            woken = connection.execute(
                update(t)
                .where(t.c.id.in_(parked.scalar_subquery()), t.c.task_id.is_(None))
                .values(task_id=WAKING)
                .returning(*t.c)
            )
            return [Job.from_row(row) for row in woken]

    def park_unsent(self, job_ids: list[int]) -> list[str]:
        """Park the START jobs of capped groups among `job_ids` (reconcile found no message
        for them); the groups they are in, to wake."""
        t = self.table
        if not job_ids:
            return []
        with self.tables.transaction() as connection:
            parked: Any = connection.execute(
                update(t)
                .where(
                    t.c.id.in_(job_ids),
                    t.c.status == Status.START,
                    t.c.max_running.is_not(None),
                )
                .values(task_id=None)
                .returning(t.c.run_group)
            )
            return sorted({group for (group,) in parked})

    def capped_groups(self) -> list[str]:
        """The capped groups with parked jobs (START, no message)."""
        t = self.table
        query = (
            select(t.c.run_group)
            .where(
                t.c.status == Status.START,
                t.c.max_running.is_not(None),
                t.c.task_id.is_(None),
            )
            .distinct()
        )
        with self.tables.transaction(read_only=True) as connection:
            return sorted(connection.scalars(query))
