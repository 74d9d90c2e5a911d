"""Filters on a job's values, as users write them: `lr>0.01`, `model.kind=cnn`.

A filter reads one key of the flattened `state` (which starts as the
parameters and gains the results), or a job column when the key names one
(`id`, `status=done`, `attempts>1`; the state key `id` is then `state.id`), or
the job's tags (`tag=baseline`, `tag!=old`; a state key `tag` is then `state.tag`),
an operator (`=`, `!=`, `<`, `<=`, `>`, `>=`) and a value read like a
parameter value. Ordering compares numbers only (infinities included, NaN
never), and a row whose value is not a number simply does not match; it never
makes the query fail. Keys are validated, and values are always bound parameters.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    Float,
    Table,
    and_,
    case,
    cast,
    func,
    literal,
    not_,
    or_,
)
from sqlalchemy.dialects.postgresql import JSONB

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import convert
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import state_key
from dbdict_celery.store.tags import has_tag
from dbdict_celery.store.values import FLOAT_TAG, NON_FINITE, encode_value

_KEY_PATTERN = r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*"
_KEY = re.compile(_KEY_PATTERN)
_FILTER = re.compile(rf"\s*({_KEY_PATTERN})\s*(==|!=|<=|>=|=|<|>)\s*(.*)")
_INFINITIES = ["Infinity", "-Infinity"]
_ORDERING = {"<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


@dataclass(frozen=True)
class Filter:
    """One parsed `KEY OP VALUE` condition."""

    key: str
    op: str
    value: Any
    typed: str = ""  # the value as typed: what a text column is compared with (`host=123`)

    @classmethod
    def parse(cls, text: str) -> Filter:
        match = _FILTER.fullmatch(text)
        if match is None:
            raise UsageError(
                f"malformed filter {text!r}: expected KEY OP VALUE, e.g. lr>0.01 or model.kind=cnn"
            )
        key, op, raw = match.groups()
        value = convert(raw)
        if op in _ORDERING and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise UsageError(f"filter {text!r}: {op} compares numbers, and {raw!r} is not one")
        return cls(key, "=" if op == "==" else op, value, raw.strip())

    def clause(self, table: Table, dialect: str) -> ColumnElement[bool]:
        """This condition as SQL for `dialect` (postgresql or sqlite): on a job column when
        the key names one (`id`, `status`, `attempts`...), else on the state (`state.id` is
        the state key `id`)."""
        if self.key in ("tag", "tags"):  # a state key `tag` is `state.tag` here
            if self.op not in ("=", "!="):
                raise UsageError(f"{self.key} is compared with = or !=: tag=baseline")
            tagged = has_tag(table.c.tags, self.typed, dialect)
            return tagged if self.op == "=" else not_(func.coalesce(tagged, False))
        key = "tag" if self.key == "state.tag" else state_key(self.key)
        if key is None:
            return self._on_column(table.c[self.key])
        if self.op in _ORDERING:
            is_number, number = (_postgres_number if dialect == "postgresql" else _sqlite_number)(
                table, key
            )
            return and_(is_number, getattr(number, _ORDERING[self.op])(self.value))
        equal = (_postgres_equal if dialect == "postgresql" else _sqlite_equal)(
            table, key, self.value
        )
        return equal if self.op == "=" else not_(func.coalesce(equal, False))

    def on_table(
        self, table: Table, what: str, choices: dict[str, dict[str, Any]] | None = None
    ) -> ColumnElement[bool]:
        """This condition on a plain column of `table` (an attempt table), which must have
        it; `what` names the table's rows in errors. `choices` maps a column to the values
        it may be compared with (as typed: what each stands for)."""
        column = table.c.get(self.key)
        if column is None or isinstance(column.type, JSON):
            names = ", ".join(c.key for c in table.c if not isinstance(c.type, JSON))
            raise UsageError(f"{what} cannot be filtered on {self.key!r}: use one of {names}")
        allowed = (choices or {}).get(self.key)
        if allowed is None:
            return self._on_column(column)
        if self.op not in ("=", "!=") or str(self.value) not in allowed:
            names = ", ".join(allowed)
            raise UsageError(f"{self.key} is one of {names}: compare it with = or !=")
        return Filter(self.key, self.op, allowed[str(self.value)])._on_column(column)

    def _on_column(self, column: ColumnElement[Any]) -> ColumnElement[bool]:
        value = self.value
        if column.type.python_type is str and self.typed and value is not None:
            value = value if isinstance(value, str) else self.typed  # a commit 1234567
        if column.key == "status" and isinstance(value, str):
            try:
                value = Status[value.upper()]
            except KeyError:
                names = ", ".join(status.name.lower() for status in Status)
                raise UsageError(f"no status {value!r}: use one of {names}") from None
        _check_column_value(column, value)
        if self.op in _ORDERING:
            return getattr(column, _ORDERING[self.op])(value)  # type: ignore[no-any-return]
        equal = column.is_(None) if value is None else column == value
        return equal if self.op == "=" else not_(func.coalesce(equal, False))


def _check_column_value(column: ColumnElement[Any], value: Any) -> None:
    """Refuse a value of another type than the column's (Postgres would fail the whole query:
    an error in what was typed, not in the database)."""
    kind = column.type.python_type
    if value is None or kind is datetime:
        if value is not None:
            raise UsageError(f"filters cannot compare the times in {column.key}")
        return
    numbers = (int, float) if kind is float else (kind,)
    if not isinstance(value, numbers) or (isinstance(value, bool) and kind is not bool):
        raise UsageError(f"{column.key} holds {kind.__name__} values, and {value!r} is not one")


def sort_key(table: Table, dialect: str, key: str, descending: bool) -> list[ColumnElement[Any]]:
    """What to order by for a state key: numbers by value (infinities included) first, then
    NaN and other values, by their text."""
    if not _KEY.fullmatch(key):
        raise UsageError(
            f"malformed sort key {key!r}: expected a column or a key such as lr or "
            "model.kind, with - first for descending"
        )
    _, number = (_postgres_number if dialect == "postgresql" else _sqlite_number)(table, key)
    if dialect == "postgresql":
        rest: ColumnElement[Any] = table.c.state.op("->>")(literal(key))
    else:
        rest = func.json_extract(table.c.state, literal(f'$."{key}"'))
    direction = "desc" if descending else "asc"
    return [getattr(number, direction)().nulls_last(), getattr(rest, direction)()]


def state_number(
    source: Any, dialect: str, key: str
) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(is a number, its value) of state key `key` of the rows of `source` (a table or a
    subquery with a `state` column), as filters read it: NaN is a number of no value."""
    return (_postgres_number if dialect == "postgresql" else _sqlite_number)(
        source, checked_key(key)
    )


def checked_key(key: str) -> str:
    """A state key as typed, refused in one line unless it is a plain (dotted) name."""
    if not _KEY.fullmatch(key):
        raise UsageError(f"malformed key {key!r}: expected a key such as lr or model.kind")
    return key


def _postgres_number(table: Table, key: str) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(is a number, its value): NaN is a number of no value, so it never compares."""
    element = table.c.state.op("->")(literal(key))
    tag = element.op("->>")(literal(FLOAT_TAG))
    plain = func.jsonb_typeof(element) == "number"
    number = case(
        (plain, cast(table.c.state.op("->>")(literal(key)), Float())),
        (tag.in_(_INFINITIES), cast(tag, Float())),
    )
    return or_(plain, tag.in_(NON_FINITE)), number


def _postgres_equal(table: Table, key: str, value: Any) -> ColumnElement[bool]:
    element = table.c.state.op("->")(literal(key))
    return element == cast(literal(json.dumps(encode_value(value))), JSONB)


def _sqlite_number(table: Table, key: str) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    """(is a number, its value), as for Postgres; SQLite has infinities but no NaN."""
    path = literal(f'$."{key}"')
    tag = func.json_extract(table.c.state, literal(f'$."{key}".{FLOAT_TAG}'))
    plain = func.json_type(table.c.state, path).in_(["integer", "real"])
    number = case(
        (plain, func.json_extract(table.c.state, path)),
        (tag == "Infinity", literal(math.inf)),
        (tag == "-Infinity", literal(-math.inf)),
    )
    return or_(plain, tag.in_(NON_FINITE)), number


def _sqlite_equal(table: Table, key: str, value: Any) -> ColumnElement[bool]:
    path = literal(f'$."{key}"')
    kind = func.json_type(table.c.state, path)
    value = encode_value(value)
    if value is None:
        return kind == "null"
    if isinstance(value, (list, tuple, dict)):
        compact = json.dumps(value, separators=(",", ":"))
        return func.json(func.json_extract(table.c.state, path)) == func.json(compact)
    plain = int(value) if isinstance(value, bool) else value
    return and_(func.json_extract(table.c.state, path) == plain, kind.in_(_json_types(value)))


def _json_types(value: Any) -> list[str]:
    """SQLite's json_type() names a scalar may have: 1 matches 1 and 1.0, not '1' or true."""
    if isinstance(value, bool):
        return ["true" if value else "false"]
    if isinstance(value, (int, float)):
        return ["integer", "real"]
    return ["text"]
