"""Inserting a batch of new jobs with few statements, whatever the batch size.

Postgres: COPY into a temporary staging table, then one INSERT ... SELECT
... ON CONFLICT DO NOTHING RETURNING (COPY is several times faster than a
multi-row INSERT). SQLite: one multi-row INSERT ... ON CONFLICT DO NOTHING.
A job already in the table keeps its row and comes back with `created=False`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, MetaData, Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.schema import CreateTable

from dbdict_celery.store.job import Inserted, NewJob
from dbdict_celery.store.schema import staging_table
from dbdict_celery.store.values import encode, encode_json

_STAGING = staging_table(MetaData())


def insert_batch(connection: Connection, t: Table, batch: Sequence[NewJob]) -> list[Inserted]:
    """Insert one batch of jobs in the caller's transaction; each comes back with its row id."""
    unique = {job.param_hash: job for job in batch}
    if connection.dialect.name == "postgresql":
        created = _copy_insert(connection, t, unique)
    else:
        created = _values_insert(connection, t, unique)
    missing = [digest for digest in unique if digest not in created]
    known = select(t.c.param_hash, t.c.id).where(t.c.param_hash.in_(missing))
    existing = {digest: id_ for digest, id_ in connection.execute(known)} if missing else {}
    ids = {**existing, **created}
    return [Inserted(ids[job.param_hash], job, job.param_hash in created) for job in batch]


def _values(job: NewJob, digest: str) -> dict[str, Any]:
    """A new job's row as the staging table holds it, but for its params."""
    return {
        "experiment": job.experiment,
        "param_hash": digest,
        "priority": job.priority,
        "exproot": job.exproot,
        "queue": job.queue,
        "study": job.study,
        "trial": job.trial,
        "limits": job.limits,
        "run_group": job.run_group,
        "max_running": job.max_running,
    }


def _values_insert(connection: Connection, t: Table, jobs: dict[str, NewJob]) -> dict[str, int]:
    """Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite); a job's state starts
    as its params."""
    rows = []
    for digest, job in jobs.items():
        params = encode(job.params)
        rows.append(_values(job, digest) | {"params": params, "state": params})
    statement = (
        sqlite.insert(t)
        .on_conflict_do_nothing(index_elements=["param_hash"])
        .returning(t.c.id, t.c.param_hash)
    )
    return {digest: id_ for id_, digest in connection.execute(statement, rows)}


def _copy_insert(connection: Connection, t: Table, jobs: dict[str, NewJob]) -> dict[str, int]:
    """COPY into a session-temporary staging table, then one INSERT ... SELECT (Postgres).

    COPY is several times faster than multi-row INSERT; the INSERT ... SELECT
    keeps ON CONFLICT deduplication and returns the new ids.
    """
    connection.execute(CreateTable(_STAGING, if_not_exists=True))
    names = [column.name for column in _STAGING.c]
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    with cursor.copy(f"COPY {_STAGING.name} ({', '.join(names)}) FROM STDIN") as copy:
        for digest, job in jobs.items():
            values = _values(job, digest)
            values["params"] = encode_json(job.params)
            values["limits"] = None if job.limits is None else json.dumps(job.limits)
            copy.write_row([values[name] for name in names])
    staged = _STAGING.c
    statement = (
        postgresql.insert(t)
        .from_select([*names, "state"], select(*staged, staged.params))
        .on_conflict_do_nothing(index_elements=["param_hash"])
        .returning(t.c.id, t.c.param_hash)
    )
    return {digest: id_ for id_, digest in connection.execute(statement)}
