"""The job table's schema, for Postgres (JSONB) and SQLite (JSON).

The column names are part of the public interface: users query the table
with psql and pandas. `SCHEMA_VERSION` is recorded per table in
`dbdict_schema`; a table made by an earlier release is upgraded in place on
first use (`UPGRADES`), under the lock that guards its creation.

Versions: 1, the first; 2 adds `queue` (the Celery queue a job is sent to, None
for the default one).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

SCHEMA_VERSION = 2
VERSIONS_TABLE = "dbdict_schema"

Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")  # SQLite autoincrements INTEGER keys only


def job_table(name: str, metadata: MetaData) -> Table:
    """The job table called `name` (already validated as an identifier)."""
    return Table(
        name,
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("status", SmallInteger, nullable=False, server_default="0"),
        Column("priority", Float, nullable=False, server_default="1.0"),
        Column("experiment", Text, nullable=False),
        Column("params", Json, nullable=False),
        Column("state", Json, nullable=False),
        Column("param_hash", String(64), nullable=False, unique=True),
        Column("attempts", Integer, nullable=False, server_default="0"),
        Column("run_id", String(32)),
        Column("host", Text),
        Column("pid", Integer),
        Column("workdir", Text),
        Column("exproot", Text),
        Column("task_id", Text),
        Column("cancel_requested", Boolean, nullable=False, server_default=false()),
        Column("heartbeat_at", DateTime(timezone=True)),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("started_at", DateTime(timezone=True)),
        Column("finished_at", DateTime(timezone=True)),
        Column("error", Text),
        Column("queue", Text),  # version 2: last, where ALTER TABLE ADD COLUMN puts it
        Index(f"{name}_booking", "status", Column("priority").desc(), "id"),
        Index(f"{name}_experiment", "experiment", "status"),  # `dbdict status`, index only
    )


def staging_table(metadata: MetaData) -> Table:
    """Where a batch of new jobs lands by COPY on Postgres, before one INSERT ... SELECT."""
    return Table(
        "dbdict_incoming",
        metadata,
        Column("experiment", Text),
        Column("params", JSONB),
        Column("param_hash", String(64)),
        Column("priority", Float),
        Column("exproot", Text),
        Column("queue", Text),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DELETE ROWS",
    )


def versions_table(metadata: MetaData) -> Table:
    """One row per job table: the schema version it was created with."""
    return Table(
        VERSIONS_TABLE,
        metadata,
        Column("table_name", String(63), primary_key=True),
        Column("version", Integer, nullable=False),
    )


def _add_queue(connection: Connection, table: str) -> None:
    quoted = connection.dialect.identifier_preparer.quote(table)  # as CREATE TABLE wrote it
    connection.execute(text(f"ALTER TABLE {quoted} ADD COLUMN queue TEXT"))


# Each step takes a table (its name validated) from the version it is keyed by to the next.
UPGRADES: dict[int, Callable[[Connection, str], None]] = {1: _add_queue}
