"""One source for the table's columns: the schema, the Job dataclass and the public list agree."""

from __future__ import annotations

from dataclasses import fields

from sqlalchemy import MetaData

from dbdict_celery.store.job import JOB_COLUMNS, Job
from dbdict_celery.store.schema import job_table


def test_the_job_dataclass_mirrors_the_table_column_for_column() -> None:
    table = job_table("jobs", MetaData())
    assert [field.name for field in fields(Job)] == [column.name for column in table.columns]


def test_the_public_columns_are_every_column_but_the_state_and_the_internal_ones() -> None:
    """The limits (a JSON object) are shown by `dbdict show`, not as a column of lists."""
    table = job_table("jobs", MetaData())
    hidden = {column.name for column in table.columns} - set(JOB_COLUMNS)
    assert hidden == {"params", "state", "param_hash", "run_id", "limits", "sole_task_id"}
    assert JOB_COLUMNS[:2] == ("id", "status")
