"""A SQL view over the job table with one typed column per flattened key, as jobman's sqlview.

So psql and BI tools can write `SELECT lr, result_error FROM mnist_view WHERE ...`.
A key becomes a column named like it with `.` as `_`, lowercased (a key named
like a row column gets a `state_` prefix). Its type follows its values: whole
numbers are bigint, other numbers double precision, booleans boolean, anything
else text; a value of
another type than its column's reads as NULL. The view is remade each time,
so run it again after new keys appear.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    Float,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    null,
    select,
)

from dbdict_celery.config import validate_table
from dbdict_celery.errors import UsageError
from dbdict_celery.store.job import JOB_COLUMNS
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.values import FLOAT_TAG, NON_FINITE


@dataclass(frozen=True)
class ViewColumn:
    """One column of the view: its name, the state key it reads, and its type."""

    name: str
    key: str
    kind: str  # integer, number, boolean or text


def view_columns(keys: dict[str, set[str]]) -> list[ViewColumn]:
    """The columns for the keys found (with their JSON types); refuses two keys that would
    share a column name."""
    columns: dict[str, ViewColumn] = {}
    for key, types in keys.items():
        name = key.replace(".", "_").lower()
        if name in JOB_COLUMNS:
            name = f"state_{name}"
        if name in columns:
            raise UsageError(f"keys {columns[name].key!r} and {key!r} would share column {name!r}")
        values = types - {"null"}
        if values <= {"integer", "number"} and "number" in values:
            values = {"number"}  # integers among floats: all double precision
        one = len(values) == 1 and values <= {"integer", "number", "boolean"}
        columns[name] = ViewColumn(name, key, values.pop() if one else "text")
    return list(columns.values())


def create_view(store: JobStore, name: str) -> list[ViewColumn]:
    """Create (or remake) the view `name` over the store's table; returns its state columns."""
    validate_table(name)
    if name == store.path.table:
        raise UsageError(f"the view cannot take the table's own name {name!r}")
    columns = view_columns(store.state_keys())
    t = store.table
    query = select(
        *(t.c[column] for column in JOB_COLUMNS),
        *(_value(store.dialect, t.c.state, column).label(column.name) for column in columns),
    )
    store.replace_view(name, query)
    return columns


def _value(dialect: str, state: ColumnElement[Any], column: ViewColumn) -> ColumnElement[Any]:
    """The column's SQL; NaN and infinities (see values.py) read as floats: on SQLite,
    which has no NaN, NaN reads as NULL."""
    key = literal(column.key)
    if dialect != "postgresql":
        value = func.json_extract(state, literal(f'$."{column.key}"'))  # SQLite keeps the types
        if column.kind == "integer":  # a later non-integer value reads as NULL, as promised
            kind = func.json_type(state, literal(f'$."{column.key}"'))
            return case((kind == "integer", value))
        if column.kind != "number":
            return value
        tag = func.json_extract(state, literal(f'$."{column.key}".{FLOAT_TAG}'))
        return case(
            (tag == "Infinity", literal_column("9e999")),  # SQLite's spelling of infinity
            (tag == "-Infinity", literal_column("-9e999")),
            (tag.is_not(None), null()),
            else_=value,
        )
    as_text: ColumnElement[Any] = state.op("->>")(key)
    if column.kind == "text":
        return as_text
    element = state.op("->")(key)
    is_kind = func.jsonb_typeof(element) == column.kind
    if column.kind == "boolean":
        return case((is_kind, cast(as_text, Boolean())))
    if column.kind == "integer":  # whole and within bigint (18 digits), else NULL
        whole = and_(func.jsonb_typeof(element) == "number", as_text.regexp_match(r"^-?\d{1,18}$"))
        return case((whole, cast(as_text, BigInteger())))
    spelled = element.op("->>")(literal(FLOAT_TAG))
    return case(
        (is_kind, cast(as_text, Float())), (spelled.in_(NON_FINITE), cast(spelled, Float()))
    )
