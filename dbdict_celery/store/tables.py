"""A job table and the tables beside it, on one engine: what every part of `JobStore` is given.

`Tables` opens the transactions every statement of the store runs in (a database
failure becomes one StoreError, see `database_errors.py`), and makes sure, once per
process, that the job table is there at the schema version this release knows:
created on first use, upgraded in place (`schema.py`). The parts of the store
(`queries.py`, `operations.py`, `history.py`, and the runs' writes in `store.py`)
are each a `StorePart`: built from a `Tables`, they reach the database through it only.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    Table,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

from dbdict_celery.config import TablePath
from dbdict_celery.errors import StoreError, TableMissing
from dbdict_celery.store.database_errors import store_error
from dbdict_celery.store.engine import READ_ONLY, engine_for
from dbdict_celery.store.schema import (
    SCHEMA_VERSION,
    UPGRADES,
    attempt_table,
    create_companion,
    environments_table,
    job_table,
    metric_table,
    studies_table,
    versions_table,
)

log = logging.getLogger(__name__)

CREATION_LOCK = 0x0DBD1C7  # the Postgres advisory lock that first uses of tables take
_READY: set[tuple[str, str, int]] = set()  # (database, table, pid) checked by this process


class Tables:
    """The job table at `path`, its attempt and metric tables, the environments, studies and
    schema versions of its database, on this process's engine for that database.

    Made on first use (unless `create` is False: then a missing job table is TableMissing,
    so that a worker never creates a table a message names), upgraded if an earlier
    release made it.
    """

    def __init__(self, path: TablePath, create: bool = True) -> None:
        self.path = path
        self.engine = engine_for(path)
        self.dialect = self.engine.dialect.name
        metadata = MetaData()
        self.jobs = job_table(path.table, metadata)
        self.attempts = attempt_table(path.table, metadata)
        self.metrics = metric_table(path.table, metadata)
        self.environments = environments_table(metadata)
        self.studies = studies_table(metadata)
        self.versions = versions_table(metadata)
        self._ensure(create)

    @contextlib.contextmanager
    def transaction(self, read_only: bool = False) -> Iterator[Connection]:
        """A transaction; a database failure becomes one clear StoreError, password masked,
        its cause chained: a TransientStoreError if it is worth asking again.

        `read_only` ones never take SQLite's write lock (see `engine.py`), so a long
        export never holds up a worker's save.
        """
        with self._connection(**{READ_ONLY: read_only}) as connection, connection.begin():
            yield connection

    @contextlib.contextmanager
    def one_statement_each(self) -> Iterator[Connection]:
        """A connection on which each statement is a transaction of its own: for the writes
        a run makes, each one statement on Postgres (a data-modifying CTE, `history.py`).
        On Postgres it is in autocommit, so a write is one round trip, not three (BEGIN,
        the statement, COMMIT); elsewhere it is one transaction, as `transaction`'s."""
        if self.dialect != "postgresql":
            with self.transaction() as connection:
                yield connection
            return
        with self._connection(isolation_level="AUTOCOMMIT") as connection:
            yield connection

    @contextlib.contextmanager
    def _connection(self, **options: Any) -> Iterator[Connection]:
        """A connection with these execution options; its database failures as StoreError."""
        try:
            with self.engine.connect() as connection:
                connection.execution_options(**options)
                yield connection
        except DBAPIError as error:
            raise store_error(error, self.path) from error

    def ago(self, seconds: float) -> ColumnElement[Any]:
        """The moment `seconds` before now, by the database's clock (never this machine's:
        workers and the machine asking may disagree on the time)."""
        if self.dialect == "postgresql":
            return func.now() - func.make_interval(0, 0, 0, 0, 0, 0, literal(float(seconds)))
        return func.datetime("now", literal(f"-{float(seconds)} seconds"))

    def _ensure(self, create: bool) -> None:
        """Create the tables on first use, or check the job table's schema version and
        upgrade it; once per process."""
        key = (str(self.path.url), self.path.table, os.getpid())
        if key in _READY:
            return
        v = self.versions
        with self.transaction() as connection:
            if self.dialect == "postgresql":  # concurrent first uses must not race on CREATE
                connection.execute(select(func.pg_advisory_xact_lock(CREATION_LOCK)))
            v.create(connection, checkfirst=True)
            self.environments.create(connection, checkfirst=True)
            self.studies.create(connection, checkfirst=True)
            existed = self.engine.dialect.has_table(connection, self.path.table)
            version = connection.scalar(
                select(v.c.version).where(v.c.table_name == self.path.table)
            )
            if not existed:
                self._create(connection, create, recorded=version is not None)
            elif version is None:
                raise StoreError(f"table {self.path} exists but is not a dbdict job table")
            elif version > SCHEMA_VERSION:
                raise StoreError(
                    f"table {self.path} has schema version {version}; "
                    f"this dbdict knows up to {SCHEMA_VERSION}: upgrade dbdict-celery"
                )
            elif version < SCHEMA_VERSION:
                self._upgrade(connection, version)
        _READY.add(key)

    def _create(self, connection: Connection, create: bool, recorded: bool) -> None:
        """Create the job table, its attempt and metric tables. `recorded`: the schema versions
        still name a job table of this name, dropped by hand since; its row is taken over."""
        if not create:
            raise TableMissing(f"there is no job table {self.path}")
        for companion in (self.attempts, self.metrics):
            create_companion(connection, companion, self.path.table)
        self.jobs.create(connection)
        self._record_version(connection, recorded)

    def _upgrade(self, connection: Connection, version: int) -> None:
        """Bring a table made by an earlier release up to SCHEMA_VERSION, in the caller's
        transaction (which holds the creation lock): its rows are left as they are."""
        for step in range(version, SCHEMA_VERSION):
            UPGRADES[step](connection, self.path.table)
        self._record_version(connection, recorded=True)
        log.info(
            "table %s upgraded from schema version %s to %s", self.path, version, SCHEMA_VERSION
        )

    def _record_version(self, connection: Connection, recorded: bool) -> None:
        """Record that the job table is at SCHEMA_VERSION, in its row if it has one."""
        v = self.versions
        if recorded:
            connection.execute(
                update(v).where(v.c.table_name == self.path.table).values(version=SCHEMA_VERSION)
            )
        else:
            connection.execute(insert(v).values(table_name=self.path.table, version=SCHEMA_VERSION))


class StorePart:
    """A part of `JobStore`: given a `Tables`, it reaches the database through it only.

    It keeps the Tables' path, engine, dialect and tables under the names the store's users
    read (`store.path`, `store.engine`, `store.table`, ...).
    """

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.path: TablePath = tables.path
        self.engine: Engine = tables.engine
        self.dialect: str = tables.dialect
        self.table: Table = tables.jobs
        self.attempt_table: Table = tables.attempts
        self.metric_table: Table = tables.metrics
        self.environments: Table = tables.environments
        self.studies: Table = tables.studies


def job_tables(path: TablePath) -> list[str]:
    """The names of the job tables dbdict made in the database of `path`, in name order (none
    if it made none there yet), as registered in the schema-version table. It only reads: an
    SQLite file that is not there is not made."""
    database = path.url.database or ""
    if path.is_sqlite and not os.path.exists(database):
        return []
    versions = versions_table(MetaData())
    engine = engine_for(path)
    try:
        with engine.connect() as connection:
            connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                if not engine.dialect.has_table(connection, versions.name):
                    return []
                query = select(versions.c.table_name).order_by(versions.c.table_name)
                return list(connection.scalars(query))
    except DBAPIError as error:
        raise store_error(error, path) from error
