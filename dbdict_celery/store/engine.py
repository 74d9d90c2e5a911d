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
import select
import threading
import time
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import now

from dbdict_celery.config import TablePath, stale_after, transaction_pooler

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
        engine = create_engine(path.url, connect_args=_postgres_connect_args())
        _check_at_checkout(engine)
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


def _postgres_connect_args() -> dict[str, Any]:
    """How psycopg connects, straight to Postgres or through a transaction pooler.

    A client cut off between its UPDATE and its COMMIT (a network partition) would hold
    the row's lock until TCP gives up, hours later, and block the takeover of its job:
    the server ends such a session once it has idled in a transaction for half the
    staleness window, so the lock is gone before reconcile may release the run.

    Through a pooler in transaction mode (`DBDICT_POOLER=transaction`) each transaction
    may run on another server session: psycopg's prepared statements would be missing
    there, and PgBouncer refuses the `options` startup parameter. The pooler's own
    `idle_transaction_timeout` then does what the server setting does.
    """
    if transaction_pooler():
        return {"connect_timeout": CONNECT_TIMEOUT, "prepare_threshold": None}
    idle_ms = int(stale_after() * 1000 / 2)
    return {
        "connect_timeout": CONNECT_TIMEOUT,
        "options": f"-c idle_in_transaction_session_timeout={idle_ms}",
    }


def _check_at_checkout(engine: Engine) -> None:
    """Check a pooled connection at checkout without a round trip, and ping it only when it
    has idled PING_AFTER_IDLE seconds.

    SQLAlchemy's `pool_pre_ping` pings at every checkout: a round trip per
    transaction, a sixth of a short job's time on a busy server. Instead, as
    redis-py does, a connection whose socket has something to read while idle is
    taken as closed by the server (a restart, a crash, a terminated session: the
    server's last words and the end of the stream wait there) and replaced, for
    the cost of one `select`. One that idled longer (through a silent network
    drop, say) is pinged. A server that goes away between the check and the
    query fails that one transaction; every run write, booking and reconcile
    pass is tried again.
    """

    @event.listens_for(engine, "checkin")
    def _idle(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: Any) -> None:
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is None:  # a new connection
            return
        if _closed_by_server(dbapi_connection):
            raise DisconnectionError("the server closed this connection")
        if time.monotonic() - idle_since < PING_AFTER_IDLE:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except Exception as error:  # the pool then tries a new connection
            raise DisconnectionError(str(error)) from error


def _closed_by_server(dbapi_connection: Any) -> bool:
    """Whether an idle connection's socket has anything to read: only a server that has
    closed the session (or is closing it) writes to a client that asked nothing."""
    try:
        poller = select.poll()  # unlike select(), any descriptor number
        poller.register(dbapi_connection.fileno(), select.POLLIN | select.POLLHUP)
        return bool(poller.poll(0))
    except Exception:  # no socket any more (psycopg raises its own errors here)
        return True


@compiles(now, "sqlite")
def _now_on_sqlite(element: now, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite's CURRENT_TIMESTAMP counts whole seconds: a job's start and end, its heartbeats,
    a timeline of short runs need milliseconds (UTC, as CURRENT_TIMESTAMP is)."""
    return "STRFTIME('%Y-%m-%d %H:%M:%f', 'now')"
