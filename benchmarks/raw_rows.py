"""The rows of the raw baseline (`raw_app.py`) and the name of its task, for both sides."""

from __future__ import annotations

from sqlalchemy import Column, Float, Integer, MetaData, Table

from dbdict_celery.config import validate_table

TASK = "raw.book_and_finish"
NOOP_TASK = "raw.noop"


def raw_table(name: str) -> Table:
    """The baseline's rows: an id, a status, and when each was started and finished."""
    return Table(
        validate_table(name), MetaData(), Column("id", Integer, primary_key=True),
        Column("status", Integer), Column("started", Float), Column("finished", Float),
    )  # fmt: skip
