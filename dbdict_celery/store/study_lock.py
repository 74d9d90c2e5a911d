"""The lock a study's driver holds, so that one driver at a time drives a study: a command,
or a look of Celery beat's.

On Postgres it is an advisory lock of a transaction kept open while the driver works, on
a connection of its own. The transaction holds no snapshot and writes nothing, so VACUUM
is not held back; through PgBouncer in transaction mode it keeps its server session, where
a session's lock would be left on a session other clients then use. The server (or the
pooler) ends a transaction that idles too long, so the driver shows it is alive with a
`keep()` at each of its looks, and learns so if the lock was lost. On SQLite it is a file
lock beside the database file. Either way it goes with the process that held it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import DBAPIError

from dbdict_celery.errors import StoreError


class StudyLock:
    """A held driver lock of one study."""

    def __init__(self, name: str, connection: Connection | None) -> None:
        self.name = name
        self._connection = connection  # None: a file lock, which needs no keeping

    def keep(self) -> None:
        """Show the database the lock's holder is alive (its transaction would otherwise be
        ended as idle); a StoreError if the lock was lost meanwhile."""
        if self._connection is None:
            return
        try:
            self._connection.execute(select(1))
        except DBAPIError as error:
            raise StoreError(
                f"the lock of study {self.name!r} was lost with its connection ({error.orig}): "
                "another driver may have taken it; run the command again"
            ) from error


@contextlib.contextmanager
def study_lock(engine: Engine, table: str, name: str) -> Iterator[StudyLock | None]:
    """The driver lock of study `name` of `table` while in the block, if no other driver
    holds it; None if one does."""
    if engine.dialect.name != "postgresql":
        with _file_lock(Path(f"{engine.url.database}.{table}.{name}.driver")) as held:
            yield StudyLock(name, None) if held else None
        return
    digest = hashlib.sha256(f"{table}/{name}".encode()).digest()
    number = int.from_bytes(digest[:8], "big", signed=True)
    with engine.connect() as connection:
        transaction = connection.begin()
        held = bool(connection.scalar(select(func.pg_try_advisory_xact_lock(number))))
        try:
            yield StudyLock(name, connection) if held else None
        finally:
            with contextlib.suppress(DBAPIError):  # a session lost has let go of it already
                transaction.rollback()


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
