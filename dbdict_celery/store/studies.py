"""The studies part of JobStore: each optimize study's definition, kept beside its trials,
and the lock its driver holds (one driver per study, wherever it runs)."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import Connection, select

from dbdict_celery.store.study_lock import StudyLock, study_lock
from dbdict_celery.store.tables import StorePart


class Studies(StorePart):
    """What each study of this job table searches (its definition, as its command gave it)."""

    def define_study(self, name: str, definition: dict[str, Any]) -> None:
        """Record the definition of study `name` (plain JSON: text and numbers), in place of
        the one on record if there is one (the caller compares them first: a study is
        redefined only in how it is driven)."""
        s = self.studies
        mine = (s.c.table_name == self.path.table) & (s.c.study == name)
        with self.tables.transaction() as connection:
            if not connection.execute(
                s.update().where(mine).values(definition=definition)
            ).rowcount:
                connection.execute(
                    s.insert().values(table_name=self.path.table, study=name, definition=definition)
                )

    def driving(self, name: str) -> contextlib.AbstractContextManager[StudyLock | None]:
        """The driver lock of study `name` while in the block, if no other driver holds it
        (None if one does): see `study_lock.py`."""
        return study_lock(self.engine, self.path.table, name)

    def study_definition(self, name: str) -> dict[str, Any] | None:
        """The definition of study `name`, or None if this table has no such study."""
        with self.tables.transaction(read_only=True) as connection:
            return self._definition(connection, name)

    def study_names(self) -> list[str]:
        """The studies of this job table, oldest first."""
        s = self.studies
        query = select(s.c.study).where(s.c.table_name == self.path.table).order_by(s.c.created_at)
        with self.tables.transaction(read_only=True) as connection:
            return list(connection.scalars(query))

    def _definition(self, connection: Connection, name: str) -> dict[str, Any] | None:
        s = self.studies
        query = select(s.c.definition).where(s.c.table_name == self.path.table, s.c.study == name)
        found = connection.scalar(query)
        return None if found is None else dict(found)
