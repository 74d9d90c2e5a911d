"""The grouping part of JobStore: `dbdict list --group-by lr,layers --agg mean,std:accuracy`.

One SQL GROUP BY on either database, over the jobs the usual filters choose. A group is
one combination of values of the keys (row columns or state keys; a job without a key
groups under None). Each aggregate reads a state key as a number as filters do: NaN and
values that are not numbers are left out (so `count:KEY` counts the jobs with a number),
infinities are kept (a mean may be infinite; a std with one is NaN).

The standard deviation (of the sample, n - 1) is computed in two passes for accuracy: a
window gives each row its group's mean, and the group sums the squared distances to it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Subquery, case, func, literal, select

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.filters import checked_key, state_number
from dbdict_celery.store.job import state_key
from dbdict_celery.store.tables import Tables
from dbdict_celery.store.values import decode

FUNCTIONS = ("count", "mean", "std", "min", "max", "sum")


@dataclass(frozen=True)
class Aggregate:
    """One function of one state key, as `--agg` names it: `mean:accuracy`."""

    function: str
    key: str

    def __str__(self) -> str:
        return f"{self.function}:{self.key}"

    @classmethod
    def parse_all(cls, specs: Iterable[str]) -> list[Aggregate]:
        """`FUNC[,FUNC...]:KEY` each (`mean,std,count:accuracy`), in the order given."""
        found: list[Aggregate] = []
        for spec in specs:
            functions, colon, key = spec.rpartition(":")
            names = [name.strip() for name in functions.split(",")]
            if not colon or not key or not all(names):
                raise UsageError(f"--agg {spec!r}: expected FUNC[,FUNC...]:KEY, e.g. mean,std:loss")
            unknown = [name for name in names if name not in FUNCTIONS]
            if unknown:
                raise UsageError(
                    f"--agg {spec!r}: no function {unknown[0]!r} (use {', '.join(FUNCTIONS)})"
                )
            found += (cls(name, key.strip()) for name in names)
        return list(dict.fromkeys(found))


@dataclass(frozen=True)
class Group:
    """One group: its keys' values, how many jobs it has, and each aggregate's value."""

    values: tuple[Any, ...]
    jobs: int
    results: dict[Aggregate, float | int | None]


class Grouping:
    """The groups of some jobs: `chosen`, a subquery of the rows of the job table."""

    def __init__(self, tables: Tables, chosen: Subquery) -> None:
        self.tables = tables
        self.dialect = tables.dialect
        self.chosen = chosen

    def groups(
        self, by: Sequence[str], aggregates: Sequence[Aggregate], limit: int | None = None
    ) -> list[Group]:
        """The groups by the keys `by`, in order of their values (a job without one last);
        the first `limit` of them."""
        if not by:
            raise UsageError("--group-by needs at least one key, e.g. --group-by lr,layers")
        chosen = self.chosen
        parts = [self._group_values(chosen, name) for name in by]
        widths = [len(part) for part in parts]
        keys = [value.label(f"g{n}") for n, value in enumerate(v for part in parts for v in part)]
        numbers = {
            key: self._number(chosen, key).label(f"n{n}")
            for n, key in enumerate(dict.fromkeys(agg.key for agg in aggregates))
        }
        rows = select(*keys, *numbers.values()).subquery()
        group_keys = [rows.c[key.name] for key in keys]
        means = {
            key: func.avg(rows.c[column.name]).over(partition_by=group_keys).label(f"m{n}")
            for n, (key, column) in enumerate(numbers.items())
        }
        with_means = select(rows, *means.values()).subquery()
        by_group = [with_means.c[key.name] for key in keys]
        columns: list[ColumnElement[Any]] = [*by_group, func.count().label("jobs")]
        for key, column in numbers.items():
            value, mean = with_means.c[column.name], with_means.c[means[key].name]
            columns += [
                func.count(value),
                func.sum(value),
                func.min(value),
                func.max(value),
                func.sum((value - mean) * (value - mean)),
            ]
        order = [key.asc().nulls_last() for key in by_group]
        query = select(*columns).group_by(*by_group).order_by(*order).limit(limit)
        with self.tables.transaction(read_only=True) as connection:
            found = connection.execute(query).all()
        return [self._group(row, by, widths, list(numbers), aggregates) for row in found]

    def _group_values(self, source: Any, name: str) -> list[ColumnElement[Any]]:
        """What a key groups by: a column; a state value as JSON on Postgres (numbers order
        as numbers); on SQLite the value as SQL has it (1 and '1' apart, numbers in order)
        and its JSON type (to tell text from an object's JSON text; numbers are one type, as
        1 and 1.0 are one value on Postgres)."""
        key = state_key(name)
        if key is None:
            return [source.c[name]]
        path = literal(f'$."{checked_key(key)}"')
        if self.dialect == "postgresql":
            return [source.c.state.op("->")(literal(key))]
        kind = func.json_type(source.c.state, path)
        number = case((kind.in_(["integer", "real"]), literal("number")), else_=kind)
        return [func.json_extract(source.c.state, path), number]  # 1 and 1.0: one group

    def _number(self, source: Any, name: str) -> ColumnElement[Any]:
        key = state_key(name)
        if key is None:
            raise UsageError(f"--agg reads state keys, and {name!r} is a row column")
        is_number, number = state_number(source, self.dialect, key)
        return case((is_number, number))

    def _group(self, row: Any, by: Sequence[str], widths: list[int], numbered: list[str],
               aggregates: Sequence[Aggregate]) -> Group:  # fmt: skip
        """A result row: the keys' values, the job count, then five sums per number."""
        keys = sum(widths)
        starts = [sum(widths[:n]) for n in range(len(by))]
        values = tuple(
            self._decoded(name, *row[start : start + width])
            for name, start, width in zip(by, starts, widths, strict=True)
        )
        stats = {key: row[keys + 1 + 5 * n : keys + 6 + 5 * n] for n, key in enumerate(numbered)}
        results = {agg: _result(agg, *stats[agg.key]) for agg in aggregates}
        return Group(values, int(row[keys]), results)

    def _decoded(self, name: str, value: Any, json_type: str | None = None) -> Any:
        """A group's value as the job has it: a status by name, a state value decoded."""
        if state_key(name) is None:
            if name == "tags":
                return (value or "").strip() or None
            return Status(value).name if name == "status" else value
        if json_type in ("object", "array"):
            value = json.loads(value)
        elif json_type in ("true", "false"):
            value = json_type == "true"
        return decode(value)


def _result(agg: Aggregate, count: int, total: float | None, low: float | None,
            high: float | None, squares: float | None) -> float | int | None:  # fmt: skip
    """One aggregate from the group's count, sum, min, max and sum of squared distances."""
    if agg.function == "count":
        return int(count)
    if not count:
        return None
    if agg.function == "std":
        if count < 2:
            return None
        if any(math.isinf(v) for v in (low, high) if v is not None) or squares is None:
            return math.nan
        return math.sqrt(max(0.0, squares) / (count - 1))
    chosen = {"mean": None if total is None else total / count, "sum": total, "min": low,
              "max": high}[agg.function]  # fmt: skip
    return None if chosen is None else float(chosen)
