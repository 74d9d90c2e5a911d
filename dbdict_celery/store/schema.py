"""The job table's schema, for Postgres (JSONB) and SQLite (JSON).

The column names are part of the public interface: users query the table
with psql and pandas. `SCHEMA_VERSION` is recorded per table in
`dbdict_schema`; a table made by an earlier release is upgraded in place on
first use (`UPGRADES`), under the lock that guards its creation.

Beside each job table, its attempt table (`<table>_attempt`) keeps one row per
run of a job: where, with which code and environment, and how it ended. The
packages of each distinct environment are kept once per database, in
`dbdict_environment`, and attempts name them by hash. Its metric table
(`<table>_metric`) keeps the curves jobs report: one row per (job, key, step).

Versions: 1, the first; 2 adds `queue` (the Celery queue a job is sent to, None
for the default one); 3 adds the attempt table; 4 the metric table; 5 the columns of
optimize's trials; 6 `limits` (a job's time and memory limits, GPUs and retries,
`limits.py`), `sole_task_id`, and the GPUs each attempt had (`devices`); 7 the users'
`tags` and `note` on each job, and when it was last put back to START (`queued_at`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

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
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateTable

from dbdict_celery.errors import StoreError
from dbdict_celery.experiment.status import Status

SCHEMA_VERSION = 7
VERSIONS_TABLE = "dbdict_schema"
ENVIRONMENTS_TABLE = "dbdict_environment"
STUDIES_TABLE = "dbdict_study"
_LONGEST_NAME = 50  # an attempt or metric table's name, so that its index names fit Postgres's 63
OPEN = text("outcome IS NULL")  # an attempt whose run goes on (or whose end went unrecorded)

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
        *_optimize_columns(),
        *_limits_columns(),
        *_version_7_columns(),
        Index(f"{name}_booking", "status", Column("priority").desc(), "id"),
        Index(f"{name}_experiment", "experiment", "status"),  # `dbdict status`, index only
        Index(f"{name}_study", "study", "trial"),
        Index(f"{name}_group", "run_group", "status"),
    )


def _optimize_columns() -> tuple[Column[Any], ...]:
    """Version 5: the study and trial number of a job `dbdict optimize` made (NULL for the
    others), and a stop asked by its pruner (the job then ends PRUNED, as a cancel ends it
    CANCELLED)."""
    return (
        Column("study", Text),
        Column("trial", Integer),
        Column("prune_requested", Boolean, nullable=False, server_default=false()),
    )


def _limits_columns() -> tuple[Column[Any], ...]:
    """Version 6: a job's limits (`limits.py`), as JSON (NULL for a job without any); the
    group it runs in and the most of that group's jobs that may run at once (`--group`,
    `--max-running`: columns, for the booking to count in SQL); and, while it waits, the
    only message that may book it (set by `dbdict priority`, which sends one at the new
    priority: the message sent before is stale), NULL once booked."""
    return (
        Column("limits", Json),
        Column("run_group", Text),
        Column("max_running", Integer),
        Column("sole_task_id", Text),
    )


def _version_7_columns() -> tuple[Column[Any], ...]:
    """Version 7: what users say of a job (`dbdict tag`, `dbdict note`): its tags, as their
    names between single spaces (` baseline old `, so that a tag is found as ` NAME `
    in the text on both databases), and a note, NULL for none; and when it was last put
    back to START (requeued, or its run ended resumable), NULL if never: since when it
    waits, for the metrics and the dashboard."""
    return (
        Column("tags", Text),
        Column("note", Text),
        Column("queued_at", DateTime(timezone=True)),
    )


def companion_name(job_table_name: str, kind: str) -> str:
    """`<table>_<kind>`; for a name too long for that, a shortened one made unique by a hash."""
    name = f"{job_table_name}_{kind}"
    if len(name) <= _LONGEST_NAME:
        return name
    digest = hashlib.sha256(job_table_name.encode("utf-8")).hexdigest()[:8]
    return f"{job_table_name[:32]}_{digest}_{kind}"


def attempt_table_name(job_table_name: str) -> str:
    """`<table>_attempt` (see `companion_name`)."""
    return companion_name(job_table_name, "attempt")


def attempt_table(job_table_name: str, metadata: MetaData) -> Table:
    """The history of the job table called `job_table_name`: one row per run of a job.

    `outcome` is None while the run goes on. The code and environment columns
    are a summary; the whole record is in the job's files (`dbdict-attempt-N.json`).
    """
    name = attempt_table_name(job_table_name)
    return Table(
        name,
        metadata,
        Column("id", Id, primary_key=True, autoincrement=True),
        Column("job_id", BigInteger, nullable=False),
        Column("attempt", Integer, nullable=False),
        Column("run_id", String(32), nullable=False, unique=True),
        Column("task_id", Text),
        Column("worker", Text),
        Column("host", Text),
        Column("pid", Integer),
        Column("started_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("finished_at", DateTime(timezone=True)),
        Column("outcome", Text),
        Column("reason", Text),
        Column("error", Text),
        Column("code_commit", Text),
        Column("code_branch", Text),
        Column("code_dirty", Boolean),
        Column("code_repository", Text),
        Column("python", Text),
        Column("platform", Text),
        Column("environment", String(64)),
        Column("variables", Json),
        Column("hardware", Json),
        Column("devices", Text),  # version 6: the CUDA_VISIBLE_DEVICES it ran with, if set
        Index(f"{name}_job", "job_id", "id"),
        Index(f"{name}_open", "job_id", postgresql_where=OPEN, sqlite_where=OPEN),
    )


def metric_table(job_table_name: str, metadata: MetaData) -> Table:
    """The curves of the job table called `job_table_name`: one row per (job, key, step).

    `value` is NULL for a NaN (SQLite cannot keep NaN; Postgres would sort it above every
    number): readers give it back as NaN. `run_id` names the run that reported it. The
    primary key serves one job's curves; `<name>_step` one step across a sweep.
    """
    name = companion_name(job_table_name, "metric")
    return Table(
        name,
        metadata,
        Column("job_id", BigInteger, primary_key=True),
        Column("key", Text, primary_key=True),
        Column("step", BigInteger, primary_key=True),
        Column("value", Float),
        Column("run_id", String(32), nullable=False),
        Index(f"{name}_step", "key", "step"),
    )


# An attempt's columns copied from its job's row when the run is booked (attempt: job).
ATTEMPT_FROM_JOB = {
    "job_id": "id",
    "attempt": "attempts",
    "run_id": "run_id",
    "task_id": "task_id",
    "host": "host",
    "pid": "pid",
    "started_at": "started_at",
}


def environments_table(metadata: MetaData) -> Table:
    """One row per distinct environment (a Python and its packages) of this database's runs."""
    return Table(
        ENVIRONMENTS_TABLE,
        metadata,
        Column("hash", String(64), primary_key=True),
        Column("python", Text, nullable=False),
        Column("packages", Json, nullable=False),
        Column("first_seen", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def studies_table(metadata: MetaData) -> Table:
    """One row per optimize study of this database: what it searches, as its command said,
    so that the command run again (or `--status`, `--best`) finds it as it was."""
    return Table(
        STUDIES_TABLE,
        metadata,
        Column("table_name", String(63), primary_key=True),
        Column("study", Text, primary_key=True),
        Column("definition", Json, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
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
        Column("study", Text),
        Column("trial", Integer),
        Column("limits", JSONB),
        Column("run_group", Text),
        Column("max_running", Integer),
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


def create_companion(connection: Connection, companion: Table, job_table_name: str) -> None:
    """Create an attempt or metric table; a clear error if a table of its name is already
    there (a job table named so, or one left by a job table dropped by hand)."""
    if connection.dialect.has_table(connection, companion.name):
        raise StoreError(
            f"cannot keep the {companion.name.rpartition('_')[2]}s of job table "
            f"{job_table_name!r}: a table {companion.name!r} is already there (rename it, or "
            "drop it if it was left by a job table dropped by hand)"
        )
    companion.create(connection)


def _add_history(connection: Connection, table: str) -> None:
    """Create the attempt table, with an open attempt for each run going on, so that its end
    is recorded too."""
    metadata = MetaData()
    jobs, attempts = job_table(table, metadata), attempt_table(table, metadata)
    create_companion(connection, attempts, table)
    running = select(*(jobs.c[column] for column in ATTEMPT_FROM_JOB.values())).where(
        jobs.c.status == Status.RUNNING,
        jobs.c.run_id.is_not(None),
        jobs.c.started_at.is_not(None),
    )
    connection.execute(insert(attempts).from_select(list(ATTEMPT_FROM_JOB), running))


def _add_metrics(connection: Connection, table: str) -> None:
    """Create the metric table (empty: no curve was reported before)."""
    create_companion(connection, metric_table(table, MetaData()), table)


def _add_columns(connection: Connection, table: str, names: list[str]) -> None:
    """Add columns of the job table, each as CREATE TABLE writes it."""
    jobs = job_table(table, MetaData())
    quoted = connection.dialect.identifier_preparer.quote(table)
    ddl = connection.dialect.ddl_compiler(connection.dialect, CreateTable(jobs))
    for name in names:
        spec = ddl.get_column_specification(jobs.c[name])
        connection.execute(text(f"ALTER TABLE {quoted} ADD COLUMN {spec}"))


def _add_studies(connection: Connection, table: str) -> None:
    """Add the columns of optimize's trials, and their index."""
    _add_columns(connection, table, [column.name for column in _optimize_columns()])
    jobs = job_table(table, MetaData())
    next(index for index in jobs.indexes if index.name == f"{table}_study").create(connection)


def _add_limits(connection: Connection, table: str) -> None:
    """Add the columns of version 6 (NULL: the jobs made before have no limits) and their
    index, and the attempts' `devices`."""
    _add_columns(connection, table, [column.name for column in _limits_columns()])
    jobs = job_table(table, MetaData())
    next(index for index in jobs.indexes if index.name == f"{table}_group").create(connection)
    attempts = attempt_table(table, MetaData())
    present = {column["name"] for column in inspect(connection).get_columns(attempts.name)}
    if "devices" not in present:  # an attempt table made by this release's step 3 has it
        quoted = connection.dialect.identifier_preparer.quote(attempts.name)
        connection.execute(text(f"ALTER TABLE {quoted} ADD COLUMN devices TEXT"))


def _add_version_7(connection: Connection, table: str) -> None:
    """Add the columns of version 7 (NULL: no job had tags, a note or a requeue time)."""
    _add_columns(connection, table, [column.name for column in _version_7_columns()])


# Each step takes a table (its name validated) from the version it is keyed by to the next.
UPGRADES: dict[int, Callable[[Connection, str], None]] = {
    1: _add_queue,
    2: _add_history,
    3: _add_metrics,
    4: _add_studies,
    5: _add_limits,
    6: _add_version_7,
}
