"""What a database error means for the one who asked: worth asking again, or not.

A database restarting, failing over or busy fails a statement for now: the
connection is lost or refused, a lock is not granted in time, a transaction
loses a serialization race. Asked again, the same statement succeeds. Any other
error (a broken statement, a value a column cannot take, a constraint) would
fail the same way every time, so it fails at once: retrying it for a minute
would only hide it. Both become one StoreError, the password masked in its
message, the driver's error kept as its cause.
"""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import OperationalError as DriverOperationalError

from dbdict_celery.config import TablePath
from dbdict_celery.errors import StoreError, TransientStoreError

# Postgres's SQLSTATEs of a failure for now: class 08 (connection exception), and these.
TRANSIENT_SQLSTATE_CLASSES = ("08",)
TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available (lock_timeout, NOWAIT)
        "57P01",  # admin_shutdown (a server stopping or restarting ends its sessions)
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now (a server starting up or in recovery)
        "25P03",  # idle_in_transaction_session_timeout (the session was ended, see engine.py)
        "53300",  # too_many_connections
    }
)
# SQLite's primary result codes of a lock held by another connection (past the busy timeout).
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def is_transient(error: DBAPIError) -> bool:
    """Whether `error` is a failure for now, that the same statement asked again may not meet.

    The driver's own error says: SQLAlchemy marks a lost connection; psycopg gives a
    SQLSTATE for what the server answered, none for a connection that failed before the
    server could (refused, cut, timed out); sqlite3 gives its result code (a broken
    statement is an OperationalError there too, with SQLITE_ERROR).
    """
    if error.connection_invalidated:
        return True
    cause = error.orig
    sqlite_code = getattr(cause, "sqlite_errorcode", None)
    if isinstance(sqlite_code, int):
        return sqlite_code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)  # extended codes included
    sqlstate = getattr(cause, "sqlstate", None)
    if not isinstance(sqlstate, str):
        return isinstance(error, DriverOperationalError)
    return sqlstate.startswith(TRANSIENT_SQLSTATE_CLASSES) or sqlstate in TRANSIENT_SQLSTATES


def store_error(error: DBAPIError, path: TablePath) -> StoreError:
    """The StoreError to raise (from `error`) for a database error on `path`'s database: a
    TransientStoreError if it is worth asking again; its first line, password masked."""
    lines = str(error.orig or error).strip().splitlines()
    detail = lines[0] if lines else type(error.orig or error).__name__
    if path.url.password:
        detail = detail.replace(str(path.url.password), "***")
    kind = TransientStoreError if is_transient(error) else StoreError
    return kind(f"database error on {path}: {detail}")
