"""Changing jobs from outside their runs: cancel, requeue, the task ids sent, views.

Part of `JobStore` (the one door to the database), kept apart as `queries.py`
is: a run changes its own row through the store's other methods; these are
what an operator (or a scheduling command) does to rows that may be anyone's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    text,
    update,
)

from dbdict_celery.config import validate_table
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.groups import PARKED
from dbdict_celery.store.job import Job
from dbdict_celery.store.limits import Limits
from dbdict_celery.store.tables import StorePart


@dataclass(frozen=True)
class Cancellation:
    """What a cancel (or a prune) did: START jobs now CANCELLED (PRUNED), and RUNNING jobs
    asked to stop."""

    cancelled: list[int]
    stopping: list[Job]


ID_CHUNK = 10_000


class Operations(StorePart):
    """The outside-a-run part of JobStore."""

    def cancel(self, job_ids: Sequence[int], task_id: str | None = None) -> Cancellation:
        """Cancel jobs: START ones at once; RUNNING ones are asked to stop.

        A running job learns of the request at its next heartbeat or save (or
        sooner, from a Celery revoke), saves, and ends CANCELLED with its state.
        With `task_id`, only jobs whose row names that Celery task change
        (for a revoke of that task).
        """
        return self._stop(job_ids, Status.CANCELLED, "cancel_requested", task_id)

    def prune(self, job_ids: Sequence[int]) -> Cancellation:
        """Stop trials early, as a pruner decided: START ones end PRUNED at once; RUNNING ones
        are asked to stop (at their next save or heartbeat) and end PRUNED with their state."""
        return self._stop(job_ids, Status.PRUNED, "prune_requested")

    def _stop(
        self, job_ids: Sequence[int], ended: Status, flag: str, task_id: str | None = None
    ) -> Cancellation:
        t = self.table
        cancelled: list[int] = []
        stopping: list[Job] = []
        with self.tables.transaction() as connection:
            for chunk in chunks(job_ids):
                chosen: list[ColumnElement[bool]] = [t.c.id.in_(chunk)]
                if task_id is not None:
                    chosen.append(t.c.task_id == task_id)
                end_waiting = (
                    update(t)
                    .where(*chosen, t.c.status == Status.START)
                    .values(status=ended, finished_at=func.now())
                    .returning(t.c.id)
                )
                stop_running = (
                    update(t)
                    .where(*chosen, t.c.status == Status.RUNNING)
                    .values({flag: True})
                    .returning(*t.c)
                )
                cancelled += connection.scalars(end_waiting)
                stopping += (Job.from_row(row) for row in connection.execute(stop_running))
        return Cancellation(sorted(cancelled), sorted(stopping, key=lambda job: job.id))

    def requeue(
        self,
        job_ids: Sequence[int],
        from_statuses: Sequence[Status] = (Status.FAILED, Status.CANCELLED, Status.PRUNED),
        priority: float | None = None,
        queue: str | None = None,
        limits: Limits | None = None,
    ) -> list[Job]:
        """Put jobs back to START (their state kept, to resume from); returns the jobs changed.

        A `priority`, a `queue` or `limits` given replace the job's."""
        t = self.table
        values: dict[str, Any] = {} if priority is None else {"priority": priority}
        if queue is not None:
            values["queue"] = queue
        if limits is not None:
            values.update(limits=limits.record(), run_group=limits.group,
                          max_running=limits.max_running)  # fmt: skip
        jobs: list[Job] = []
        with self.tables.transaction() as connection:
            for chunk in chunks(job_ids):
                statement = (
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.status.in_(list(from_statuses)))
                    .values(
                        status=Status.START,
                        run_id=None,
                        task_id=None,  # its message is yet to be sent
                        sole_task_id=None,
                        cancel_requested=False,
                        prune_requested=False,
                        queued_at=func.now(),
                        **values,
                    )
                    .returning(*t.c)
                )
                jobs += (Job.from_row(row) for row in connection.execute(statement))
        return sorted(jobs, key=lambda job: job.id)

    def reprioritize(self, job_ids: Sequence[int], priority: float) -> list[Job]:
        """Give the waiting (START) jobs among `job_ids` a new priority; returns them. Jobs in
        other statuses are left as they are: a run takes its priority when it is booked."""
        t = self.table
        jobs: list[Job] = []
        with self.tables.transaction() as connection:
            for chunk in chunks(job_ids):
                statement = (
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.status == Status.START)
                    .values(priority=priority)
                    .returning(*t.c)
                )
                jobs += (Job.from_row(row) for row in connection.execute(statement))
        return sorted(jobs, key=lambda job: job.id)

    def set_task_ids(self, task_ids: Mapping[int, str], sole: bool = False) -> None:
        """Record which Celery task (message) was sent for each waiting job; with `sole`, as
        the only message that may book it (`sole_task_id`: those sent before are stale),
        else as one that may book it as well as any other. A job its message parked
        already (taken before its id was recorded) stays PARKED, for its group to wake."""
        if not task_ids:
            return
        t = self.table
        sole_task_id: Any = bindparam("new_task_id") if sole else None
        statement = (
            update(t)
            .where(
                t.c.id == bindparam("job_id"),
                t.c.status == Status.START,
                t.c.task_id.is_distinct_from(PARKED),
            )
            .values(task_id=bindparam("new_task_id"), sole_task_id=sole_task_id)
        )
        rows = [{"job_id": job_id, "new_task_id": task} for job_id, task in task_ids.items()]
        with self.tables.transaction() as connection:
            connection.execute(statement, rows)

    def replace_view(self, name: str, query: Select[Any]) -> None:
        """(Re)create the view `name` (an identifier, validated here) as `query`."""
        validate_table(name)
        body = query.compile(self.engine, compile_kwargs={"literal_binds": True})
        quoted = self.engine.dialect.identifier_preparer.quote(name)
        with self.tables.transaction() as connection:
            connection.execute(text(f"DROP VIEW IF EXISTS {quoted}"))
            connection.execute(text(f"CREATE VIEW {quoted} AS {body}"))


def chunks(job_ids: Sequence[int]) -> list[list[int]]:
    """Ids in lists short enough for one IN (...) each: drivers bound the parameters of a
    statement (SQLite to 32,766, psycopg to 65,535), and a sweep may have millions of jobs."""
    ids = list(job_ids)
    return [ids[start : start + ID_CHUNK] for start in range(0, len(ids), ID_CHUNK)]
