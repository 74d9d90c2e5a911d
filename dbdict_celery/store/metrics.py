"""The metric table: the curves jobs report, one row per (job, key, step).

Part of `JobStore` (the one door to the database). A run's reports are written
only with one of its saves that lands, in the same transaction, and on Postgres
in the same statement (`_report_statements`): a run that lost its job writes
none, and each (job, key, step) is one row, owned by the last run that reported
it. Reports that go back on a key (a step at or below one already written)
replace that curve from that step on (see `experiment/reports.py`).

A NaN is kept as NULL (SQLite has no NaN) and read back as NaN.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CTE,
    BigInteger,
    Connection,
    Float,
    Select,
    Text,
    and_,
    delete,
    exists,
    func,
    insert,
    literal,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as postgres_insert
from sqlalchemy.sql.dml import Delete, Insert

from dbdict_celery.experiment.reports import Reports
from dbdict_celery.store.operations import chunks
from dbdict_celery.store.tables import StorePart

if TYPE_CHECKING:  # pandas is optional: imported only when a DataFrame is asked for
    import pandas

STREAM_BATCH = 10_000  # points read at a time by a stream


@dataclass(frozen=True)
class MetricPoint:
    """One reported value: `run` is the attempt number of the run that reported it."""

    job_id: int
    key: str
    step: int
    value: float
    run: int | None


@dataclass(frozen=True)
class CurveColumns:
    """Points of one key as parallel arrays: the job of each, its step and its value."""

    job_ids: array[int]
    steps: array[int]
    values: array[float]


@dataclass(frozen=True)
class CurveSummary:
    """One curve of a job in a few numbers: how many steps, and where it ends."""

    steps: int
    last_step: int
    last_value: float


class Metrics(StorePart):
    """The metric-table part of JobStore."""

    # -- reading ---------------------------------------------------------------------------

    def metrics(
        self, job_ids: int | Sequence[int] | None = None, keys: Sequence[str] | None = None
    ) -> list[MetricPoint]:
        """The reported points of these jobs (one id, several, or None for every job), of
        these keys (None: every key), by job, key and step."""
        return list(self.stream_metrics(job_ids, keys))

    def stream_metrics(
        self, job_ids: int | Sequence[int] | None = None, keys: Sequence[str] | None = None
    ) -> Iterator[MetricPoint]:
        """Like `metrics`, a batch at a time (an export of millions of points)."""
        ids = [job_ids] if isinstance(job_ids, int) else job_ids
        with self.tables.transaction(read_only=True) as connection:
            for group in _groups(ids):
                query = self._points(group, keys).execution_options(yield_per=STREAM_BATCH)
                for row in connection.execute(query):
                    yield MetricPoint(row.job_id, row.key, row.step, _value(row.value), row.run)

    def metrics_frame(
        self, job_ids: int | Sequence[int] | None = None, keys: Sequence[str] | None = None
    ) -> pandas.DataFrame:
        """`metrics` as a pandas DataFrame (columns id, key, step, value, run)."""
        import pandas

        rows = [
            (point.job_id, point.key, point.step, point.value, point.run)
            for point in self.stream_metrics(job_ids, keys)
        ]
        return pandas.DataFrame(rows, columns=["id", "key", "step", "value", "run"])

    def curve_columns(self, key: str, job_ids: Sequence[int] | None = None) -> CurveColumns:
        """One key's points of these jobs (None: every job) by job and step, as three flat
        arrays: what a plot of a million points reads, without an object per point."""
        m = self.metric_table
        columns = CurveColumns(array("q"), array("q"), array("d"))
        with self.tables.transaction(read_only=True) as connection:
            for group in _groups(job_ids):
                query = select(m.c.job_id, m.c.step, m.c.value).where(m.c.key == key)
                if group is not None:
                    query = query.where(m.c.job_id.in_(list(group)))
                query = query.order_by(m.c.job_id, m.c.step).execution_options(
                    yield_per=STREAM_BATCH
                )
                for job_id, step, value in connection.execute(query):
                    columns.job_ids.append(job_id)
                    columns.steps.append(step)
                    columns.values.append(_value(value))
        return columns

    def curve_summaries(self, job_id: int) -> dict[str, CurveSummary]:
        """Each curve of a job, by key: its number of steps, its last step and value."""
        m = self.metric_table
        last = (
            select(m.c.key, func.count().label("steps"), func.max(m.c.step).label("last"))
            .where(m.c.job_id == job_id)
            .group_by(m.c.key)
            .subquery()
        )
        query = (
            select(last.c.key, last.c.steps, last.c.last, m.c.value)
            .join(m, and_(m.c.job_id == job_id, m.c.key == last.c.key, m.c.step == last.c.last))
            .order_by(last.c.key)
        )
        with self.tables.transaction(read_only=True) as connection:
            return {
                key: CurveSummary(steps, step, _value(value))
                for key, steps, step, value in connection.execute(query)
            }

    def _points(self, job_ids: Sequence[int] | None, keys: Sequence[str] | None) -> Select[Any]:
        m, a = self.metric_table, self.attempt_table
        query = (
            select(m.c.job_id, m.c.key, m.c.step, m.c.value, a.c.attempt.label("run"))
            .outerjoin(a, a.c.run_id == m.c.run_id)
            .order_by(m.c.job_id, m.c.key, m.c.step)
        )
        if job_ids is not None:
            query = query.where(m.c.job_id.in_(list(job_ids)))
        if keys is not None:
            query = query.where(m.c.key.in_(list(keys)))
        return query

    # -- writing, with a run's own write ---------------------------------------------------

    def _report_statements(
        self, landed: CTE, run_id: str, reports: Reports
    ) -> list[Delete | Insert]:
        """On Postgres, the statements that write `reports` for the job a run's write
        `landed` on (a CTE returning its `id`, or no row if it did not land), each to ride
        in that write as a CTE: the points the reports take back go, the reported ones are
        written."""
        m = self.metric_table
        job_id = landed.c.id
        keys, steps, values = _columns(reports)
        points = _unnest(("key", Text, keys), ("step", BigInteger, steps), ("value", Float, values))
        again = _unnest(("key", Text, keys), ("step", BigInteger, steps))
        firsts = _unnest(
            ("key", Text, [key for key, _ in reports]),
            ("first", BigInteger, [curve.steps[0] for _, curve in reports]),
        )
        taking_back = delete(m).where(
            m.c.job_id == job_id,
            m.c.key == firsts.c.key,
            m.c.step >= firsts.c.first,
            ~exists().where(again.c.key == m.c.key, again.c.step == m.c.step),
        )
        each_point = select(job_id, points.c.key, points.c.step, points.c.value, literal(run_id))
        adding = postgres_insert(m).from_select(
            ["job_id", "key", "step", "value", "run_id"],
            each_point.join_from(landed, points, true()),
        )
        adding = adding.on_conflict_do_update(
            index_elements=[m.c.job_id, m.c.key, m.c.step],
            set_={"value": adding.excluded.value, "run_id": adding.excluded.run_id},
        )
        return [taking_back, adding]

    def _write_reports(
        self, connection: Connection, job_id: int, run_id: str, reports: Reports
    ) -> None:
        """Write `reports` for job `job_id` in the caller's transaction, statement after
        statement (SQLite, where a round trip costs nothing)."""
        m = self.metric_table
        for key, curve in reports:
            connection.execute(
                delete(m).where(m.c.job_id == job_id, m.c.key == key, m.c.step >= curve.steps[0])
            )
        keys, steps, values = _columns(reports)
        rows = [
            {"job_id": job_id, "key": key, "step": step, "value": value, "run_id": run_id}
            for key, step, value in zip(keys, steps, values, strict=True)
        ]
        connection.execute(insert(m), rows)


def _columns(reports: Reports) -> tuple[list[str], list[int], list[float | None]]:
    """The reports as three columns (key, step, value), a NaN as None."""
    keys: list[str] = []
    steps: list[int] = []
    values: list[float | None] = []
    for key, curve in reports:
        keys += [key] * len(curve.steps)
        steps += curve.steps
        values += [None if math.isnan(value) else value for value in curve.values]
    return keys, steps, values


def _unnest(*columns: tuple[str, Any, list[Any]]) -> Any:
    """Postgres's `unnest` of arrays bound as parameters (three parameters, whatever the
    number of points), as a table whose columns are named as given."""
    arrays = [literal(values, ARRAY(kind)) for _, kind, values in columns]
    return func.unnest(*arrays).table_valued(*(name for name, _, _ in columns)).render_derived()


def _groups(job_ids: Sequence[int] | None) -> list[Sequence[int] | None]:
    """The jobs a read asks for, in groups of a size one IN list takes (None: every job)."""
    return [None] if job_ids is None else list(chunks(job_ids))


def _value(stored: float | None) -> float:
    return math.nan if stored is None else float(stored)
