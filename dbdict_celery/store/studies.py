"""The studies part of JobStore: each optimize study's definition, kept beside its trials."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from dbdict_celery.store.tables import StorePart


class Studies(StorePart):
    """What each study of this job table searches (its definition, as its command gave it)."""

    def define_study(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        """Record the definition of study `name` (plain JSON: text and numbers) if it has
        none yet; returns the one on record (the caller compares: a study is not redefined
        under the same name)."""
        s = self.studies
        with self.tables.transaction() as connection:
            known = self._definition(connection, name)
            if known is not None:
                return known
            connection.execute(
                s.insert().values(table_name=self.path.table, study=name, definition=definition)
            )
        return definition

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
