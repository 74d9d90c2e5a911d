"""The tags and notes part of JobStore: what users say of their jobs.

`dbdict tag 12 13 +baseline -old` and `dbdict note 12 "lr too high"`. A job's tags are
kept in one text column as their names between single spaces (` baseline old `), so a
job has a tag when the column holds ` NAME ` (a plain search, case and all, the same on
Postgres and SQLite), and each change is one UPDATE (concatenate, or REPLACE), atomic with
any other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, select, update

from dbdict_celery.errors import JobNotFound, UsageError
from dbdict_celery.store.job import Job
from dbdict_celery.store.operations import chunks
from dbdict_celery.store.tables import StorePart

_NAME = re.compile(r"[A-Za-z0-9][\w.:-]*")


def tag_name(text: str) -> str:
    """A tag's name as typed, checked: letters, digits and `_ . : -`, no spaces."""
    if not _NAME.fullmatch(text):
        raise UsageError(
            f"tag {text!r}: a tag is letters, digits and _ . : - (starting with a letter or digit)"
        )
    return text


def has_tag(tags: ColumnElement[str | None], name: str, dialect: str) -> ColumnElement[bool]:
    """Whether the tags column holds `name`, as written (NULL, which filters treat as false,
    if none). A plain search for ` NAME `: LIKE would ignore case on SQLite only."""
    position = func.strpos if dialect == "postgresql" else func.instr
    return position(tags, f" {tag_name(name)} ") > 0


class Annotations(StorePart):
    """Tags and notes."""

    def tag(
        self, job_ids: Sequence[int], add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> list[Job]:
        """Add and remove tags of jobs; returns them as they now are. Every id must name a
        job (JobNotFound, and nothing changed, otherwise)."""
        add, remove = [tag_name(n) for n in add], [tag_name(n) for n in remove]
        t = self.table
        jobs: list[Job] = []
        with self.tables.transaction() as connection:
            for chunk in chunks(job_ids):
                chosen = t.c.id.in_(chunk)
                changes: list[ColumnElement[Any]] = [
                    case(
                        (has_tag(t.c.tags, name, self.dialect), t.c.tags),
                        else_=func.coalesce(t.c.tags, " ") + literal(f"{name} "),
                    )
                    for name in add
                ]
                changes += (
                    func.nullif(func.replace(t.c.tags, f" {name} ", " "), " ") for name in remove
                )
                for tags in changes:
                    connection.execute(update(t).where(chosen).values(tags=tags))
                found = connection.execute(select(t).where(chosen)).all()
                jobs += (Job.from_row(row) for row in found)
                _check_found(chunk, jobs)
        return sorted(jobs, key=lambda job: job.id)

    def annotate(self, job_id: int, note: str | None) -> Job:
        """Set (or, with None or blank text, clear) the note of job `job_id`."""
        t = self.table
        text = (note or "").strip() or None
        statement = update(t).where(t.c.id == job_id).values(note=text).returning(*t.c)
        with self.tables.transaction() as connection:
            row = connection.execute(statement).first()
        if row is None:
            raise JobNotFound(f"no job {job_id} in {self.path}")
        return Job.from_row(row)


def _check_found(asked: Sequence[int], found: Sequence[Job]) -> None:
    missing = sorted(set(asked) - {job.id for job in found})
    if missing:  # raised inside the transaction: nothing is changed
        raise JobNotFound(f"no job {', '.join(map(str, missing[:10]))}")
