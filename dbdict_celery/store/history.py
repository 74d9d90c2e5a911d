"""The attempt table: every run of a job, opened when it is booked, closed with its outcome.

Part of `JobStore` (the one door to the database). A run's attempt row is
written in the same transaction as the job row's change that starts or ends
the run, so the two never disagree: a booking opens it, and whichever write
ends the run (its outcome, a give-back, a worker putting back a run it
killed, reconcile finding it lost) closes it, once. The code a run ran is
known only once its experiment is imported, after the booking: it lands with
the run's first landed save, or its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Table,
    and_,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL
from sqlalchemy.sql.dml import Update

from dbdict_celery.experiment.provenance import Code, Environment
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import (
    OUTCOME_OF_STATUS,
    Attempt,
    AttemptOutcome,
    RunCounts,
    StopReason,
)
from dbdict_celery.store.operations import chunks
from dbdict_celery.store.schema import ATTEMPT_FROM_JOB
from dbdict_celery.store.tables import StorePart

SIGTERM = "SIGTERM"  # the reason a run gives when a revoke's signal reaches it
NOT_RECORDED = "not recorded"  # the reason of a run whose end no attempt recorded
_REGISTERED: set[tuple[URL, str]] = set()  # (database, environment hash) known to hold it

# What a run's write does to its open attempt, given the job's new status (an SQL expression).
AttemptChange = Callable[[ColumnElement[Any]], dict[str, Any]]


def code_values(code: Code) -> dict[str, Any]:
    """The attempt columns that summarize a run's code."""
    return {
        "code_commit": code.commit,
        "code_branch": code.branch,
        "code_dirty": code.dirty,
        "code_repository": code.repository,
    }


class History(StorePart):
    """The attempt-table part of JobStore."""

    # -- reading ---------------------------------------------------------------------------

    def attempts(self, job_id: int) -> list[Attempt]:
        """Every run of a job, the first first (an empty list for a job never run)."""
        return self.attempts_of([job_id]).get(job_id, [])

    def attempts_of(self, job_ids: Sequence[int]) -> dict[int, list[Attempt]]:
        """Every run of each of these jobs (a job never run has none), in one query per ten
        thousand jobs."""
        a = self.attempt_table
        found: dict[int, list[Attempt]] = {}
        with self.tables.transaction(read_only=True) as connection:
            for chunk in chunks(job_ids):
                query = select(a).where(a.c.job_id.in_(chunk)).order_by(a.c.job_id, a.c.id)
                for row in connection.execute(query):
                    found.setdefault(row.job_id, []).append(Attempt.from_row(row))
        return found

    def run_counts(self, job_id: int) -> RunCounts:
        """How a job's ended runs count (see RunCounts): its deaths, failures and preemptions,
        from its attempts (the runs since its table has had them)."""
        a = self.attempt_table
        counted = {"deaths": died(a), "failures": failed(a), "preemptions": preempted(a)}
        query = select(
            *(func.count(case((ended, 1))).label(name) for name, ended in counted.items())
        ).where(a.c.job_id == job_id)
        with self.tables.transaction(read_only=True) as connection:
            return RunCounts(**connection.execute(query).one()._mapping)

    def packages(self, environment: str) -> list[str] | None:
        """The packages (`name==version`) of an environment by its hash; None if unknown."""
        e = self.environments
        with self.tables.transaction(read_only=True) as connection:
            found = connection.scalar(select(e.c.packages).where(e.c.hash == environment))
        return None if found is None else list(found)

    # -- writing ---------------------------------------------------------------------------

    def register_environment(self, environment: Environment) -> None:
        """Keep an environment's packages once in this database (once per process, too)."""
        key = (self.path.url, environment.hash)
        if key in _REGISTERED:
            return
        dialect = postgresql if self.dialect == "postgresql" else sqlite
        statement = (
            dialect.insert(self.environments)
            .values(
                hash=environment.hash,
                python=environment.python,
                packages=list(environment.packages),
            )
            .on_conflict_do_nothing(index_elements=["hash"])
        )
        with self.tables.transaction() as connection:
            connection.execute(statement)
        _REGISTERED.add(key)

    def note_revoke(self, job_id: int, task_id: str) -> None:
        """Record that the run of Celery task `task_id` was revoked: its stop reason, and, if
        it ended resumable before the revoke cancelled its job, that it ended cancelled."""
        a, t = self.attempt_table, self.table
        latest = (
            select(func.max(a.c.id))
            .where(a.c.job_id == job_id, a.c.task_id == task_id)
            .scalar_subquery()
        )
        job_status = select(t.c.status).where(t.c.id == job_id).scalar_subquery()
        ended_cancelled = and_(
            a.c.outcome == AttemptOutcome.INCOMPLETE.value, job_status == Status.CANCELLED
        )
        stopped_by_it = or_(  # still running, or stopped by the revoke's SIGTERM just now
            a.c.outcome.is_(None),
            and_(
                a.c.outcome.in_([AttemptOutcome.INCOMPLETE.value, AttemptOutcome.CANCELLED.value]),
                or_(a.c.reason.is_(None), a.c.reason.in_([SIGTERM, StopReason.CANCEL])),
            ),
        )
        statement = (
            update(a)
            .where(a.c.id == latest, stopped_by_it)
            .values(
                reason=StopReason.REVOKE,
                outcome=case(
                    (ended_cancelled, literal(AttemptOutcome.CANCELLED.value)), else_=a.c.outcome
                ),
            )
        )
        with self.tables.transaction() as connection:
            connection.execute(statement)

    def close_orphaned_attempts(self) -> int:
        """End the open attempts whose job no longer runs them: runs an earlier release
        ended (it wrote no attempt). How each ended is read from its job when the job still
        names the run (done, failed), else it is lost, its end unknown; the reason says it
        was not recorded. Returns how many were closed (the open attempts are indexed: a
        pass reads only those)."""
        a, t = self.attempt_table, self.table
        same_run = and_(t.c.id == a.c.job_id, t.c.run_id == a.c.run_id)
        status = select(t.c.status).where(same_run).scalar_subquery()
        finished = select(t.c.finished_at).where(same_run).scalar_subquery()
        orphaned = and_(
            a.c.outcome.is_(None),
            or_(status.is_(None), status != Status.RUNNING),
        )
        statement = (
            update(a)
            .where(orphaned)
            .values(
                outcome=func.coalesce(outcome_of(status), AttemptOutcome.LOST.value),
                reason=NOT_RECORDED,
                finished_at=finished,  # unknown (None) but for a run its job still names
            )
        )
        with self.tables.transaction() as connection:
            return connection.execute(statement).rowcount

    def _booked_with_attempt(
        self,
        connection: Connection,
        booking: Update,
        worker: str | None,
        environment: Environment | None,
        devices: str | None = None,
    ) -> Row[Any] | None:
        """Run `booking` (an UPDATE of the job table RETURNING the booked row) and open the
        attempt of the run it books; the booked row, or None. On Postgres in one statement,
        so that history costs the hot path no round trip."""
        a = self.attempt_table
        known: dict[str, Any] = {"worker": worker}
        if devices is not None:
            known["devices"] = devices
        if environment is not None:
            known.update(environment.summary())
        if self.dialect == "postgresql":
            booked = booking.cte("booked")
            source = select(
                *(booked.c[column] for column in ATTEMPT_FROM_JOB.values()),
                *(literal(value, a.c[name].type) for name, value in known.items()),
            )
            opening = insert(a).from_select([*ATTEMPT_FROM_JOB, *known], source)
            return connection.execute(select(booked).add_cte(opening.cte("opened"))).first()
        row = connection.execute(booking).first()
        if row is not None:
            from_job = {name: getattr(row, column) for name, column in ATTEMPT_FROM_JOB.items()}
            connection.execute(insert(a).values(**from_job, **known))
        return row

    def _close_attempt(
        self,
        connection: Connection,
        which: ColumnElement[bool],
        outcome: AttemptOutcome,
        reason: str | None = None,
        error: str | None = None,
    ) -> None:
        """End the open attempt `which` selects, in the caller's transaction."""
        values = self._closing(literal(outcome.value), reason, error)
        a = self.attempt_table
        connection.execute(update(a).where(which, a.c.outcome.is_(None)).values(**values))

    def _closing(
        self,
        outcome: ColumnElement[Any],
        reason: str | None = None,
        error: str | None = None,
        code: Code | None = None,
    ) -> dict[str, Any]:
        """The values that end an attempt; a reason already noted (a revoke) is kept, unless
        the run had to be killed after the grace period: that is how it ended."""
        values: dict[str, Any] = {"outcome": outcome, "finished_at": func.now()}
        if reason == StopReason.KILLED:
            values["reason"] = reason
        elif reason is not None:
            values["reason"] = func.coalesce(self.attempt_table.c.reason, reason)
        if error is not None:
            values["error"] = error
        if code is not None:
            values.update(code_values(code))
        return values


def died(a: Table) -> ColumnElement[bool]:
    """Whether a run of attempt table `a` is a death (see RunCounts): lost, but neither killed
    by its worker at a shutdown (a preemption that outlived its grace period) nor closed
    without its end recorded (a run an earlier release ended, most often resumable)."""
    not_a_death = [StopReason.KILLED, NOT_RECORDED]
    return and_(
        a.c.outcome == AttemptOutcome.LOST.value,
        func.coalesce(a.c.reason, "").not_in(not_a_death),
    )


def failed(a: Table) -> ColumnElement[bool]:
    """Whether a run of attempt table `a` is a failure: its experiment raised."""
    return a.c.outcome == AttemptOutcome.FAILED.value


def preempted(a: Table) -> ColumnElement[bool]:
    """Whether a run of attempt table `a` is a preemption: stopped from outside (it has a stop
    reason) and ended resumable, or killed by its worker after the grace period."""
    return or_(
        and_(a.c.outcome == AttemptOutcome.INCOMPLETE.value, a.c.reason.is_not(None)),
        and_(a.c.outcome == AttemptOutcome.LOST.value, a.c.reason == StopReason.KILLED),
    )


def outcome_of(status: ColumnElement[Any]) -> ColumnElement[Any]:
    """The outcome of a run that left its job in `status`, in SQL (None for RUNNING)."""
    return case(
        {int(ended): literal(outcome.value) for ended, outcome in OUTCOME_OF_STATUS.items()},
        value=status,
    )
