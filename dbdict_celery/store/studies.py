"""The studies part of JobStore: each optimize study's definition, kept beside its trials,
and the lock its driver holds (one driver per study, wherever it runs)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError

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

    @contextlib.contextmanager
    def driving(self, name: str) -> Iterator[bool]:
        """Hold the lock of study `name`'s driver while in the block, if no other driver
        holds it; yields whether this one does.

        On Postgres it is an advisory lock of a transaction kept open meanwhile (it holds no
        snapshot and writes nothing, so VACUUM is not held back; and through PgBouncer in
        transaction mode, a transaction keeps its server session, where a session's lock
        would not); on SQLite, a file lock beside the database file. Either way it goes
        with the process that held it."""
        key = f"{self.path.table}/{name}"
        if self.dialect != "postgresql":
            with _file_lock(
                Path(f"{self.engine.url.database}.{self.path.table}.{name}.driver")
            ) as held:
                yield held
            return
        number = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as connection:
            transaction = connection.begin()
            held = bool(connection.scalar(select(func.pg_try_advisory_xact_lock(number))))
            try:
                yield held
            finally:
                with contextlib.suppress(DBAPIError):  # a session lost has let go of it already
                    transaction.rollback()

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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[bool]:
    """An exclusive lock on the file at `path` (made if missing) while in the block, if no
    one else holds it; yields whether this one does."""
    with path.open("a") as file:
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)
