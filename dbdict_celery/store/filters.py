"""Filters on a job's values, as users write them: `lr>0.01`, `model.kind=cnn`.

A filter reads one key of the flattened `state` (which starts as the
parameters and gains the results), an operator (`=`, `!=`, `<`, `<=`, `>`,
`>=`) and a value read like a parameter value. Ordering compares numbers only,
and a row whose value is not a number simply does not match; it never makes
the query fail. Keys are validated, and values are always bound parameters.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Float, Table, and_, case, cast, func, literal, not_
from sqlalchemy.dialects.postgresql import JSONB

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import convert

_FILTER = re.compile(r"\s*([A-Za-z_][\w]*(?:\.[A-Za-z_][\w]*)*)\s*(==|!=|<=|>=|=|<|>)\s*(.*)")
_ORDERING = {"<": "__lt__", "<=": "__le__", ">": "__gt__", ">=": "__ge__"}


@dataclass(frozen=True)
class Filter:
    """One parsed `KEY OP VALUE` condition."""

    key: str
    op: str
    value: Any

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
        return cls(key, "=" if op == "==" else op, value)

    def clause(self, table: Table, dialect: str) -> ColumnElement[bool]:
        """This condition as SQL on `table.state`, for `dialect` (postgresql or sqlite)."""
        if self.op in _ORDERING:
            is_number, number = (_postgres_number if dialect == "postgresql" else _sqlite_number)(
                table, self.key
            )
            return and_(is_number, getattr(number, _ORDERING[self.op])(self.value))
        equal = (_postgres_equal if dialect == "postgresql" else _sqlite_equal)(
            table, self.key, self.value
        )
        return equal if self.op == "=" else not_(func.coalesce(equal, False))


def sort_key(table: Table, dialect: str, key: str) -> list[ColumnElement[Any]]:
    """What to order by for a state key: numbers by value first, then other values as text."""
    Filter.parse(f"{key}=0")  # validates the key
    if dialect == "postgresql":
        is_number, number = _postgres_number(table, key)
        return [case((is_number, number)), table.c.state.op("->>")(literal(key))]
    return [func.json_extract(table.c.state, literal(f'$."{key}"'))]  # numbers sort before text


def _postgres_number(table: Table, key: str) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    element = table.c.state.op("->")(literal(key))
    number = cast(table.c.state.op("->>")(literal(key)), Float())
    return func.jsonb_typeof(element) == "number", number


def _postgres_equal(table: Table, key: str, value: Any) -> ColumnElement[bool]:
    element = table.c.state.op("->")(literal(key))
    return element == cast(literal(json.dumps(value)), JSONB)


def _sqlite_number(table: Table, key: str) -> tuple[ColumnElement[bool], ColumnElement[Any]]:
    path = literal(f'$."{key}"')
    is_number = func.json_type(table.c.state, path).in_(["integer", "real"])
    return is_number, func.json_extract(table.c.state, path)


def _sqlite_equal(table: Table, key: str, value: Any) -> ColumnElement[bool]:
    path = literal(f'$."{key}"')
    kind = func.json_type(table.c.state, path)
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
