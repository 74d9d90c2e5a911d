"""The job table's store: `JobStore`, the one door to the database.

`JobStore` is made of parts, each given the same `Tables` (`tables.py`: the job table and
the tables beside it, and the transactions every statement runs in, where a database
failure becomes one StoreError). Here: inserting and booking jobs, and the writes that
keep up or end a run (save, heartbeat, finish, release); in `queries.py` the reads, in
`operations.py` the changes from outside a run, in `history.py` the attempt table, in
`metrics.py` the metric table.
`bulk_insert.py` writes a batch of new jobs and `schema.py` creates and upgrades tables,
both in the store's transactions; `engine.py` sets up each connection.

Every status change is one conditional UPDATE. Booking takes a START row and
makes it RUNNING with a fresh `run_id` (`FOR UPDATE SKIP LOCKED` on Postgres;
SQLite serializes writers with `BEGIN IMMEDIATE`), so two workers never run
one job. Later writes of a run (`save`, `heartbeat`, `finish`) only land
while the row is still RUNNING under that `run_id`: a run whose job was
cancelled or re-booked changes nothing, and learns so from what it gets back
(`Standing.LOST` from a save or a heartbeat, None from `finish`). What a run's
write changes beside the row (its attempt, the curves it reported) changes in
the same transaction, only if the row took it: on Postgres in the same statement.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import time
import uuid
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.sql.dml import Update

from dbdict_celery.config import TablePath, table_path
from dbdict_celery.errors import TransientStoreError
from dbdict_celery.experiment.provenance import Code, Environment
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome, StopReason
from dbdict_celery.store.bulk_insert import insert_batch
from dbdict_celery.store.census import Counting
from dbdict_celery.store.groups import Groups
from dbdict_celery.store.history import AttemptChange, History, code_values, died, outcome_of
from dbdict_celery.store.job import (
    RESTART_PRIORITY,
    Inserted,
    Job,
    NewJob,
    Standing,
)
from dbdict_celery.store.metrics import Metrics
from dbdict_celery.store.operations import Operations
from dbdict_celery.store.queries import Queries
from dbdict_celery.store.studies import Studies
from dbdict_celery.store.tables import Tables
from dbdict_celery.store.tags import Annotations
from dbdict_celery.store.values import encode

log = logging.getLogger(__name__)


def _back_to_start(t: Table, priority: float | None) -> dict[str, Any]:
    """The values that end a run resumable: START, or CANCELLED if a cancel was asked, or
    PRUNED if its pruner asked it to stop (a user's cancel comes first)."""
    stopped = or_(t.c.cancel_requested, t.c.prune_requested)
    values: dict[str, Any] = {
        "status": case(
            (t.c.cancel_requested, Status.CANCELLED),
            (t.c.prune_requested, Status.PRUNED),
            else_=Status.START,
        ),
        "finished_at": case((stopped, func.now()), else_=None),
        "queued_at": case((stopped, t.c.queued_at), else_=func.now()),  # waits again from now
        "run_id": None,
    }
    if priority is not None:
        values["priority"] = case((stopped, t.c.priority), else_=priority)
    return values


def _standing(row: Row[Any] | None) -> Standing:
    if row is None:
        return Standing.LOST
    return Standing.STOP_ASKED if row.cancel_requested or row.prune_requested else Standing.OWNED


BATCH_SIZE = 10_000
RUN_WRITE_PATIENCE = 60.0  # seconds a run's write waits for a database that does not answer
RUN_WRITE_RETRY_EVERY = 1.0  # seconds between two tries of a run's write


class JobStore(Queries, Operations, History, Metrics, Studies, Groups, Counting, Annotations):
    """A job table: insert, book, save, finish and release jobs; query them (`queries.py`),
    change them from outside their runs (`operations.py`), keep every run's attempt
    (`history.py`), every job's curves (`metrics.py`) and optimize's studies (`studies.py`),
    cap groups (`groups.py`), count the table for monitoring (`census.py`) and keep what
    users say of jobs (`tags.py`).
    Each part works on the `Tables` the store is built with."""

    def __init__(self, path: TablePath, create: bool = True) -> None:
        super().__init__(Tables(path, create))

    @classmethod
    def open(
        cls, location: str | None = None, table: str | None = None, create: bool = True
    ) -> JobStore:
        """The store at a table path (None: DBDICT_DB, else the embedded default).

        Without `create`, a missing table is a StoreError rather than made (a
        worker must not create tables named by messages).
        """
        return cls(table_path(location, table), create)

    # -- inserting -------------------------------------------------------------------------

    def insert(
        self, jobs: Iterable[NewJob], batch_size: int = BATCH_SIZE
    ) -> Iterator[list[Inserted]]:
        """Insert jobs in batches (a few statements per batch, none per job), yielding
        each committed batch.

        A job whose (experiment, params) is already in the table is not inserted
        again: it comes back with `created=False` and the existing row's id.
        """
        pending = iter(jobs)
        while batch := list(itertools.islice(pending, batch_size)):
            with self.tables.transaction() as connection:
                inserted = insert_batch(connection, self.table, batch)
            yield inserted

    # -- one run of a job ------------------------------------------------------------------

    def book(
        self,
        job_id: int | None = None,
        host: str | None = None,
        pid: int | None = None,
        exclude: Collection[int] = (),
        task_id: str | None = None,
        workdir: str | None = None,
        worker: str | None = None,
        environment: Environment | None = None,
        devices: str | None = None,
    ) -> Job | None:
        """Mark a START job RUNNING for this run and return it, or None if there is none.

        Without `job_id`: the highest-priority START job not in `exclude`,
        oldest first among equals. With `job_id`: that job, only if it is START
        (a duplicate message for a job already running or finished books nothing, and
        neither does one other than the message the row names as its only one,
        `sole_task_id`, which booking clears). A job of a capped group is booked only
        while the group has room (`groups.py`); a message that finds it full parks its
        job. Without `job_id`, full groups are passed over without taking turns: runners
        of `dbdict sql` on Postgres may, racing, exceed a cap by their number.
        `task_id` records the Celery task that runs it; `workdir` where the run
        keeps its files while it runs, in the same write. The same transaction opens
        the run's attempt, with its `worker` (a Celery worker's name), the process's
        `environment` (registered with `register_environment` first) and the GPUs the run
        is given (`devices`, as CUDA_VISIBLE_DEVICES names them).
        """
        t = self.table
        if job_id is None:
            pick = (
                select(t.c.id)
                .where(t.c.status == Status.START, t.c.id.not_in(list(exclude)))
                .where(self.room_in_group())  # no lock: see `book`'s docstring
                .order_by(t.c.priority.desc(), t.c.id)
                .limit(1)
            )
            if self.dialect == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            which: ColumnElement[bool] = t.c.id == pick.scalar_subquery()
        else:
            which = t.c.id == job_id
            if task_id is not None:  # not a message a later one replaced (`sole_task_id`)
                which &= or_(t.c.sole_task_id.is_(None), t.c.sole_task_id == task_id)
        values: dict[str, Any] = {"task_id": task_id} if task_id is not None else {}
        if workdir is not None:
            values["workdir"] = workdir

        def booking(where: ColumnElement[bool]) -> Update:
            return (
                update(t)
                .where(which, where, t.c.status == Status.START)
                .values(
                    status=Status.RUNNING,
                    run_id=uuid.uuid4().hex,
                    host=host or socket.gethostname(),
                    pid=os.getpid() if pid is None else pid,
                    attempts=t.c.attempts + 1,
                    cancel_requested=False,
                    prune_requested=False,
                    started_at=func.now(),
                    heartbeat_at=func.now(),
                    finished_at=None,
                    sole_task_id=None,
                    **values,
                )
                .returning(*t.c)
            )

        booked = (worker, environment, devices)
        uncapped = true() if job_id is None else t.c.max_running.is_(None)
        with self.tables.one_statement_each() as connection:
            row = self._booked_with_attempt(connection, booking(uncapped), *booked)
            group = None if row or job_id is None else self.group_of(connection, job_id)
        if group is not None and job_id is not None:  # a capped group's: booked if it has room
            with self.group_turn(group) as connection:
                row = self._booked_with_attempt(connection, booking(self.room_in_group()), *booked)
                if row is None:
                    self.park(connection, job_id)
        return Job.from_row(row) if row is not None else None

    def _update_owned(
        self,
        job: Job,
        what: str,
        attempt: AttemptChange | None = None,
        reports: Reports | None = None,
        **values: Any,
    ) -> Row[Any] | None:
        """Update the row if it is still this run's; the updated row, or None (and a warning).
        `attempt` changes the run's attempt, and the run's `reports` are written, with it,
        only if the row took it.

        A database that does not answer for now (restarting, failing over, locked) is asked
        again every RUN_WRITE_RETRY_EVERY seconds for up to RUN_WRITE_PATIENCE seconds: the
        run goes on as if nothing happened. The update is conditional on the run, so asking
        twice never writes over someone else's run. Any other database error (the statement
        or a value is wrong) would fail again: it is raised at once.
        """
        deadline = time.monotonic() + RUN_WRITE_PATIENCE
        while True:
            try:
                return self._try_update_owned(job, what, values, attempt, reports)
            except TransientStoreError as error:
                if time.monotonic() >= deadline:
                    raise
                log.warning("job %s: %s not recorded yet, trying again: %s", job.id, what, error)
                time.sleep(RUN_WRITE_RETRY_EVERY)

    def _try_update_owned(
        self,
        job: Job,
        what: str,
        values: dict[str, Any],
        attempt: AttemptChange | None,
        reports: Reports | None,
    ) -> Row[Any] | None:
        t = self.table
        owned = and_(t.c.id == job.id, t.c.run_id == job.run_id, t.c.status == Status.RUNNING)
        change = (
            update(t)
            .where(owned)
            .values(**values)
            .returning(t.c.id, t.c.status, t.c.cancel_requested, t.c.prune_requested)
        )
        with self.tables.one_statement_each() as connection:
            row = self._changed_with_run(connection, change, job, attempt, reports)
            if row is not None:
                return row
            status = connection.scalar(select(t.c.status).where(t.c.id == job.id))
        now = "gone" if status is None else Status(status).name
        log.warning("job %s is no longer this run's (it is %s): %s not recorded", job.id, now, what)
        return None

    def _changed_with_run(
        self,
        connection: Connection,
        change: Update,
        job: Job,
        attempt: AttemptChange | None,
        reports: Reports | None,
    ) -> Row[Any] | None:
        """Run `change` (an UPDATE of the job table RETURNING its id and new status) and, if
        it changed the row, `attempt` on the run's open attempt and the writes of its
        `reports`; the changed row, or None. On Postgres in one statement, so that history
        and curves cost a run no round trip."""
        a = self.attempt_table
        run = and_(a.c.run_id == job.run_id, a.c.outcome.is_(None))
        if self.dialect == "postgresql":
            ended = change.cte("ended")
            companions: list[Any] = []
            if attempt is not None:
                closing = attempt(ended.c.status)
                companions.append(update(a).where(run, a.c.job_id == ended.c.id).values(closing))
            if reports:
                companions += self._report_statements(ended, job.run_id or "", reports)
            ctes = [each.cte(f"companion_{n}") for n, each in enumerate(companions)]
            return connection.execute(select(ended).add_cte(*ctes)).first()
        row = connection.execute(change).first()
        if row is not None:
            if attempt is not None:
                connection.execute(update(a).where(run).values(**attempt(literal(row.status))))
            if reports:
                self._write_reports(connection, row.id, job.run_id or "", reports)
        return row

    def save(
        self,
        job: Job,
        state: dict[str, Any],
        exproot: str | None = None,
        code: Code | None = None,
        reports: Reports | None = None,
    ) -> Standing:
        """Record a run's current (flattened) state; how the run stands after (see Standing).

        The run should stop when the job is no longer its own (LOST: nothing was
        recorded) or when a cancel was asked (STOP_ASKED: the state was recorded).
        `exproot`: where the run pushes the job's files, recorded for a job that
        names none yet (before its first push: see `DBRSyncChannel`). `code`: the
        run's code, for its attempt (once: see `history.py`). `reports`: the curves the
        run reported since its last save, written with the state (`metrics.py`).
        """
        values: dict[str, Any] = {"state": encode(state), "heartbeat_at": func.now()}
        if exproot is not None:
            values["exproot"] = func.coalesce(self.table.c.exproot, exproot)
        attempt = None if code is None else (lambda _: code_values(code))
        return _standing(self._update_owned(job, "state", attempt, reports, **values))

    def heartbeat(self, job: Job) -> Standing:
        """Tell the table the run is alive; how the run stands after (as for `save`)."""
        return _standing(self._update_owned(job, "heartbeat", heartbeat_at=func.now()))

    def finish(
        self,
        job: Job,
        status: Status,
        state: dict[str, Any] | None = None,
        error: str | None = None,
        priority: float | None = None,
        exproot: str | None = None,
        reason: str | None = None,
        code: Code | None = None,
    ) -> Status | None:
        """End a run: DONE, FAILED (with its traceback), or back to START to resume later.

        A run that goes back to START while a cancel was asked ends CANCELLED
        instead (its state kept). Returns the status the row now has, or None
        (nothing changed) if the job is no longer this run's. `exproot` and `code` as
        for `save`; `reason`: why the run stopped, if it was told to, for its attempt.
        A run's last points are written by a save before it ends (see `DBRSyncChannel`).
        """
        t = self.table
        values: dict[str, Any] = {"status": status, "heartbeat_at": func.now()}
        if status == Status.START:
            values.update(_back_to_start(t, priority))
        else:
            values["finished_at"] = func.now()
            if priority is not None:
                values["priority"] = priority
        if state is not None:
            values["state"] = encode(state)
        if error is not None:
            values["error"] = error
        if exproot is not None:
            values["exproot"] = func.coalesce(t.c.exproot, exproot)

        def close(ended: ColumnElement[Any]) -> dict[str, Any]:
            return self._closing(outcome_of(ended), reason, error, code)

        row = self._update_owned(job, f"outcome {status.name}", close, **values)
        return None if row is None else Status(row.status)

    def unbook(self, job: Job, reason: str | None = None) -> Status | None:
        """Give back a job this run booked but could not start (its files or its code are
        out of reach here; `reason` says which): START as it was (CANCELLED if a cancel was
        asked), the attempt not counted. Returns the new status, or None if the job is no
        longer this run's."""
        t = self.table
        values = {**_back_to_start(t, None), "attempts": t.c.attempts - 1, "heartbeat_at": None}

        def give_back(_: ColumnElement[Any]) -> dict[str, Any]:
            return self._closing(literal(AttemptOutcome.GIVEN_BACK.value), reason)

        row = self._update_owned(job, "give-back", give_back, **values)
        return None if row is None else Status(row.status)

    def release(
        self, job_id: int, task_id: str, priority: float | None = None, reason: str | None = None
    ) -> Status | None:
        """Put back a RUNNING job whose run was killed, from its last save.

        For the worker that killed the run (it cannot finish by itself): the
        row changes only if it is still RUNNING for `task_id`. Like `finish`
        to START, it ends CANCELLED if a cancel was asked. Returns the new
        status, or None if nothing changed. The run's attempt ends lost, for `reason`.
        """
        t, a = self.table, self.attempt_table
        statement = (
            update(t)
            .where(t.c.id == job_id, t.c.task_id == task_id, t.c.status == Status.RUNNING)
            .values(heartbeat_at=func.now(), **_back_to_start(t, priority))
            .returning(t.c.status)
        )
        with self.tables.transaction() as connection:
            status = connection.scalar(statement)
            if status is not None:
                run = and_(a.c.job_id == job_id, a.c.task_id == task_id)
                self._close_attempt(connection, run, AttemptOutcome.LOST, reason)
        return None if status is None else Status(status)

    def release_stale(self, job: Job, seconds: float, max_attempts: int) -> Status | None:
        """Put back a RUNNING job whose heartbeat stopped `seconds` ago: its worker is gone.

        From its last save, like a killed run: START with RESTART_PRIORITY,
        or FAILED once it has lost `max_attempts` runs so (this one included;
        its preemptions and failures do not count), or CANCELLED if a cancel
        was asked. Only the run in `job` is touched, and only while its
        heartbeat is still that old: a run that came back to life is left be.
        Returns the new status, or None if nothing changed.
        """
        lost = (
            f"its worker was lost: no heartbeat for {seconds:g} s (host {job.host}, pid {job.pid})"
        )
        return self._release_run(
            job,
            lost,
            StopReason.STALE,
            max_attempts,
            self.table.c.heartbeat_at < self.tables.ago(seconds),
        )

    def release_lost(
        self, job: Job, max_attempts: int, reason: str, silent_for: float
    ) -> Status | None:
        """Put back a RUNNING job whose run is known to be dead (its process is gone), as
        `release_stale` does, once its heartbeat is `silent_for` seconds old (a few
        heartbeats, not the minutes of staleness); `reason` becomes its error if it is out
        of lost runs. None (nothing changed) while the heartbeat is fresher."""
        return self._release_run(
            job, reason, StopReason.DIED, max_attempts,
            self.table.c.heartbeat_at < self.tables.ago(silent_for),
        )  # fmt: skip

    def release_dead(self, job: Job, max_attempts: int, reason: str) -> Status | None:
        """Put back a RUNNING job whose run its own supervisor saw die, as `release_lost`
        does, at once: the supervisor beat for the run, so no other run can hold the job.

        It waits for a row another write holds (a cancel that a revoke makes at the same
        moment): skipped, the job would stay RUNNING until its heartbeat went stale."""
        return self._release_run(job, reason, StopReason.DIED, max_attempts, wait=True)

    def _release_run(
        self,
        job: Job,
        reason: str,
        cause: str,
        max_attempts: int,
        *conditions: ColumnElement[bool],
        wait: bool = False,
    ) -> Status | None:
        """Put back a dead run; its attempt ends lost, for `cause` (`reason` in detail). The
        job fails if this death is its `max_attempts`-th: deaths are counted from its attempts
        (this run's is still open), preemptions and failures apart (see RunCounts). Unless
        `wait`, a row another transaction holds is left for the next pass."""
        t, a = self.table, self.attempt_table
        values = _back_to_start(t, RESTART_PRIORITY)
        deaths = select(func.count()).where(a.c.job_id == t.c.id, died(a)).scalar_subquery()
        stopped = or_(t.c.cancel_requested, t.c.prune_requested)
        out_of_attempts = and_(deaths + 1 >= max_attempts, not_(stopped))
        values["status"] = case((out_of_attempts, Status.FAILED), else_=values["status"])
        values["finished_at"] = case((out_of_attempts, func.now()), else_=values["finished_at"])
        values["error"] = case((out_of_attempts, literal(reason)), else_=t.c.error)
        which: ColumnElement[bool] = t.c.id == job.id
        if self.dialect == "postgresql" and not wait:  # locked by a hung transaction: next pass
            which = t.c.id.in_(select(t.c.id).where(which).with_for_update(skip_locked=True))
        statement = (
            update(t)
            .where(which, t.c.run_id == job.run_id, t.c.status == Status.RUNNING)
            .where(*conditions)
            .values(**values)
            .returning(t.c.status)
        )
        with self.tables.transaction() as connection:
            status = connection.scalar(statement)
            if status is not None:
                run = self.attempt_table.c.run_id == job.run_id
                self._close_attempt(connection, run, AttemptOutcome.LOST, cause, reason)
        return None if status is None else Status(status)
