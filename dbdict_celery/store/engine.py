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
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.pool import ConnectionPoolEntry

from dbdict_celery.config import TablePath, stale_after

CONNECT_TIMEOUT = 5
PING_AFTER_IDLE = 1.0  # seconds a pooled connection may idle before it is checked at checkout
_IDLE_SINCE = "dbdict_idle_since"
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
        engine = create_engine(
            path.url,
            connect_args={
                "connect_timeout": CONNECT_TIMEOUT,
                "options": f"-c idle_in_transaction_session_timeout={idle_ms}",
            },
        )
        _ping_when_idle(engine)
        return engine
    database = path.url.database or ""
    if database and database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(database)), exist_ok=True)
    engine = create_engine(path.url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        # In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a killed
        # process loses nothing, a power cut may lose the last commits, never consistency.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")
        dbapi_connection.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        reading = connection.get_execution_options().get(READ_ONLY, False)
        connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def _ping_when_idle(engine: Engine) -> None:
    """Check a pooled connection before use only when it has idled PING_AFTER_IDLE seconds.

    SQLAlchemy's `pool_pre_ping` checks at every checkout: a round trip per
    transaction, a sixth of a short job's time on a busy server. A connection
    used a moment ago is handed out as it is; one that idled (through a server
    restart, say) is pinged and, if dead, replaced before the transaction starts.
    A restart within the last second can still fail one transaction: every run
    write, booking and reconcile pass is tried again.
    """

    @event.listens_for(engine, "checkin")
    def _idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool then tries a new connection
            raise DisconnectionError(str(error)) from error
