"""Database engines: one per database and process, configured for safe concurrent writers.

Connection pools do not survive a fork (Celery's prefork children), so the
process id is part of the key. SQLite runs in WAL mode with a busy timeout;
a writing transaction takes the write lock at once (`BEGIN IMMEDIATE`), so
two writers queue up instead of failing halfway through a transaction, while
a reading one (marked with the `READ_ONLY` execution option) takes no lock:
in WAL mode readers and the writer never block each other.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event

from dbdict_celery.config import TablePath, stale_after

CONNECT_TIMEOUT = 5
READ_ONLY = "dbdict_read_only"  # an execution option: this transaction only reads
_ENGINES: dict[tuple[str, int], Engine] = {}
_LOCK = threading.Lock()


def engine_for(path: TablePath) -> Engine:
    """The engine of this process for the database of `path`."""
    key = (path.url.render_as_string(hide_password=False), os.getpid())
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _create_engine(path)
        return _ENGINES[key]


def _create_engine(path: TablePath) -> Engine:
    if not path.is_sqlite:
        # A client cut off between its UPDATE and its COMMIT (a network partition) would hold
        # the row's lock until TCP gives up, hours later, and block the takeover of its job:
        # the server ends such a session once it has idled in a transaction for half the
        # staleness window, so the lock is gone before reconcile may release the run.
        idle_ms = int(stale_after() * 1000 / 2)
        return create_engine(
            path.url,
            pool_pre_ping=True,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT,
                "options": f"-c idle_in_transaction_session_timeout={idle_ms}",
            },
        )
    database = path.url.database or ""
    if database and database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    engine = create_engine(path.url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine
