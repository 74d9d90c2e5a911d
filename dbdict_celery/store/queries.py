"""Reading the job table: what `status`, `list`, `show`, `export` and `reconcile` ask.

Part of `JobStore` (the one door to the database); kept apart because the
store's other half changes jobs, and this half only reads. Ages are computed
by the database's clock, never this machine's: workers and the machine
asking may disagree on the time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    select,
)
from sqlalchemy.sql.elements import UnaryExpression

from dbdict_celery.errors import JobNotFound, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import RUNNING, AttemptOutcome
from dbdict_celery.store.filters import Filter, sort_key
from dbdict_celery.store.grouping import Aggregate, Group, Grouping
from dbdict_celery.store.job import Job, state_key, utc
from dbdict_celery.store.tables import StorePart
from dbdict_celery.store.values import FLOAT_TAG, NON_FINITE

STREAM_BATCH = 1000
# What `outcome` may be compared with, as typed: an outcome, or `running` (none yet).
ATTEMPT_CHOICES = {
    "outcome": {
        **{outcome.value: outcome.value for outcome in AttemptOutcome},
        **{outcome.name.lower(): outcome.value for outcome in AttemptOutcome},
        RUNNING: None,
    }
}
_JSON_TYPES = {
    "real": "number",
    "text": "string",
    "true": "boolean",
    "false": "boolean",
}  # fmt: skip  (SQLite's json_each names -> JSON's)


@dataclass(frozen=True)
class Summary:
    """The table at a glance: counts per experiment and status, and the running jobs."""

    counts: dict[tuple[str, Status], int]
    running: list[Job]
    now: datetime

    def age(self, moment: datetime | None) -> timedelta | None:
        """How long ago `moment` was, by the database's clock."""
        return None if moment is None else self.now - moment

    def is_stale(self, job: Job, seconds: float) -> bool:
        """Whether a running job's last heartbeat is older than `seconds`."""
        silent = self.age(job.heartbeat_at)
        return silent is not None and silent.total_seconds() > seconds

    def total(self, status: Status) -> int:
        """How many jobs of every experiment are in `status`."""
        return sum(n for (_, counted), n in self.counts.items() if counted == status)


class Queries(StorePart):
    """The reading part of JobStore."""

    def get(self, job_id: int) -> Job:
        """One job in full; JobNotFound if there is no such id."""
        with self.tables.transaction(read_only=True) as connection:
            row = connection.execute(select(self.table).where(self.table.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no job {job_id} in {self.path}")
        return Job.from_row(row)

    def counts(self) -> dict[Status, int]:
        """The number of jobs in each status (every status listed, zeros included)."""
        t = self.table
        with self.tables.transaction(read_only=True) as connection:
            grouped = connection.execute(select(t.c.status, func.count()).group_by(t.c.status))
            found = {status: count for status, count in grouped}
        return {status: int(found.get(status, 0)) for status in Status}

    def summary(self, running_limit: int = 50) -> Summary:
        """Counts per experiment and status (from an index), and the oldest running jobs."""
        t = self.table
        grouped = select(t.c.experiment, t.c.status, func.count()).group_by(
            t.c.experiment, t.c.status
        )
        running = (
            select(t).where(t.c.status == Status.RUNNING).order_by(t.c.id).limit(running_limit)
        )
        with self.tables.transaction(read_only=True) as connection:
            counts = {
                (name, Status(status)): int(n) for name, status, n in connection.execute(grouped)
            }
            jobs = [Job.from_row(row) for row in connection.execute(running)]
            now: datetime = connection.execute(select(func.now())).scalar_one()
        return Summary(counts, jobs, utc(now))

    def jobs(
        self,
        status: Status | Sequence[Status] | None = None,
        where: Iterable[str | Filter] = (),
        limit: int | None = None,
        sort: str | None = None,
        ids: Sequence[int] | None = None,
        attempt: Iterable[str | Filter] = (),
        offset: int = 0,
    ) -> list[Job]:
        """Jobs filtered on status and on values (`lr>0.01`, `model.kind=cnn`), and on their
        runs: `attempt` conditions (`outcome=lost`, `host=node3`) that one attempt of the
        job meets, all of them.

        In id order, or by `sort`: a row column or a state key, `-` first for
        descending (numbers by value, before text); `limit` of them after the first
        `offset` (a page).
        """
        query = self._select(status, where, sort, ids, attempt).offset(offset).limit(limit)
        with self.tables.transaction(read_only=True) as connection:
            return [Job.from_row(row) for row in connection.execute(query)]

    def groups(
        self,
        by: Sequence[str],
        aggregates: Sequence[Aggregate] = (),
        status: Status | Sequence[Status] | None = None,
        where: Iterable[str | Filter] = (),
        attempt: Iterable[str | Filter] = (),
        limit: int | None = None,
    ) -> list[Group]:
        """The jobs `jobs` would choose, grouped by the keys `by` (columns or state keys),
        with `aggregates` of their numbers (`grouping.py`); the first `limit` groups."""
        chosen = self._select(status, where, None, None, attempt).order_by(None).subquery()
        return Grouping(self.tables, chosen).groups(by, aggregates, limit)

    def trials(self, study: str, among: Sequence[int] | None = None) -> list[Job]:
        """The jobs of an optimize study (only those of the ids `among`, if given), by trial
        number."""
        t = self.table
        query = select(t).where(t.c.study == study).order_by(t.c.trial)
        if among is not None:
            query = query.where(t.c.id.in_(list(among)))
        with self.tables.transaction(read_only=True) as connection:
            return [Job.from_row(row) for row in connection.execute(query)]

    def count_trials(self, study: str, status: Sequence[Status]) -> int:
        """How many jobs of an optimize study are in one of these statuses."""
        t = self.table
        query = select(func.count()).where(t.c.study == study, t.c.status.in_(list(status)))
        with self.tables.transaction(read_only=True) as connection:
            return int(connection.scalar(query) or 0)

    def stream(
        self,
        status: Status | Sequence[Status] | None = None,
        where: Iterable[str | Filter] = (),
        sort: str | None = None,
    ) -> Iterator[Job]:
        """Like `jobs`, a batch at a time: for exports of millions of rows."""
        query = self._select(status, where, sort, None).execution_options(yield_per=STREAM_BATCH)
        with self.tables.transaction(read_only=True) as connection:
            for row in connection.execute(query):
                yield Job.from_row(row)

    def stale(self, seconds: float) -> list[Job]:
        """RUNNING jobs whose last heartbeat is older than `seconds`, by the database's clock."""
        t = self.table
        silent = t.c.heartbeat_at < self.tables.ago(seconds)
        query = select(t).where(t.c.status == Status.RUNNING, silent)
        with self.tables.transaction(read_only=True) as connection:
            return [Job.from_row(row) for row in connection.execute(query.order_by(t.c.id))]

    def queues(self, status: Status) -> set[str | None]:
        """The queues the jobs in `status` are sent to (None: the default queue)."""
        return set(self.queue_counts(status))

    def queue_counts(self, status: Status) -> dict[str | None, int]:
        """How many jobs in `status` each queue holds (None: the default queue)."""
        t = self.table
        query = select(t.c.queue, func.count()).where(t.c.status == status).group_by(t.c.queue)
        with self.tables.transaction(read_only=True) as connection:
            return {queue: int(count) for queue, count in connection.execute(query)}

    def state_keys(
        self, status: Status | Sequence[Status] | None = None, where: Iterable[str | Filter] = ()
    ) -> dict[str, set[str]]:
        """Every key of the chosen jobs' flattened states, with the JSON types its values have
        (integer, number for any other, string, boolean, null, array, object), in key order."""
        chosen = self._select(status, where, None, None).order_by(None).subquery()
        if self.dialect == "postgresql":
            each = func.jsonb_each(chosen.c.state).table_valued("key", "value")
            tag: ColumnElement[Any] = each.c.value.op("->>")(literal(FLOAT_TAG))
            typed: ColumnElement[Any] = func.jsonb_typeof(each.c.value)
            whole = cast(each.c.value, Text).regexp_match(r"^-?[0-9]+$")
            kind: ColumnElement[Any] = case(
                (and_(typed == "number", whole), literal("integer")), else_=typed
            )
        else:
            each = func.json_each(chosen.c.state).table_valued("key", "value", "type")
            tag = case((each.c.type == "object", func.json_extract(each.c.value, f"$.{FLOAT_TAG}")))
            kind = each.c.type
        kind = case((tag.in_(NON_FINITE), literal("number")), else_=kind)  # NaN is a number
        query = select(each.c.key, kind).select_from(chosen).join(each, literal(True)).distinct()
        found: dict[str, set[str]] = {}
        with self.tables.transaction(read_only=True) as connection:
            for key, json_type in connection.execute(query):
                found.setdefault(key, set()).add(_JSON_TYPES.get(json_type, json_type))
        return dict(sorted(found.items()))

    def _select(
        self,
        status: Status | Sequence[Status] | None,
        where: Iterable[str | Filter],
        sort: str | None,
        ids: Sequence[int] | None,
        attempt: Iterable[str | Filter] = (),
    ) -> Select[Any]:
        t, a = self.table, self.attempt_table
        query = select(t)
        on_attempt = [
            (each if isinstance(each, Filter) else Filter.parse(each)).on_table(
                a, "attempts", ATTEMPT_CHOICES
            )
            for each in attempt
        ]
        if on_attempt:
            query = query.where(t.c.id.in_(select(a.c.job_id).where(*on_attempt)))
        if isinstance(status, Status):
            query = query.where(t.c.status == status)
        elif status is not None:
            query = query.where(t.c.status.in_(list(status)))
        if ids is not None:
            query = query.where(t.c.id.in_(list(ids)))
        for condition in where:
            parsed = condition if isinstance(condition, Filter) else Filter.parse(condition)
            query = query.where(parsed.clause(t, self.dialect))
        return query.order_by(*self._order(sort), t.c.id)

    def _order(self, sort: str | None) -> list[UnaryExpression[Any] | ColumnElement[Any]]:
        if not sort:
            return []
        descending = sort.startswith("-")
        name = sort.lstrip("-")
        if not name:
            raise UsageError("--sort needs a key, e.g. --sort -result.accuracy")
        key = state_key(name)
        if key is None:
            column: ColumnElement[Any] = self.table.c[name]
            return [column.desc() if descending else column.asc()]
        return sort_key(self.table, self.dialect, key, descending)
