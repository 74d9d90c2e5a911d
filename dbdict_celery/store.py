"""The job table: the one place that runs SQL.

Every status change is one conditional UPDATE. Booking takes a START row and
makes it RUNNING with a fresh `run_id` (`FOR UPDATE SKIP LOCKED` on Postgres;
SQLite serializes writers with `BEGIN IMMEDIATE`), so two workers never run
one job. Later writes of a run (`save`, `heartbeat`, `finish`) only land
while the row is still RUNNING under that `run_id`: a run whose job was
cancelled or re-booked changes nothing, and learns so from the False it gets.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import uuid
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    MetaData,
    and_,
    create_engine,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.schema import CreateTable

from dbdict_celery.config import TablePath, table_path
from dbdict_celery.errors import JobNotFound, StoreError
from dbdict_celery.filters import Filter
from dbdict_celery.job import Inserted, Job, NewJob, Status
from dbdict_celery.schema import SCHEMA_VERSION, job_table, staging_table, versions_table

log = logging.getLogger(__name__)

BATCH_SIZE = 10_000
CONNECT_TIMEOUT = 5
_ENGINES: dict[tuple[str, int], Engine] = {}
_READY: set[tuple[str, str, int]] = set()
_LOCK = threading.Lock()
_RUN_COLUMNS = frozenset({"workdir", "exproot", "task_id"})
_STAGING = staging_table(MetaData())


def engine_for(path: TablePath) -> Engine:
    """One engine (and connection pool) per database and process: pools do not survive fork."""
    key = (path.url.render_as_string(hide_password=False), os.getpid())
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _create_engine(path)
        return _ENGINES[key]


def _create_engine(path: TablePath) -> Engine:
    if not path.is_sqlite:
        return create_engine(
            path.url, pool_pre_ping=True, connect_args={"connect_timeout": CONNECT_TIMEOUT}
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
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


class JobStore:
    """A job table: insert, book, save, finish and query jobs."""

    def __init__(self, path: TablePath) -> None:
        self.path = path
        self.engine = engine_for(path)
        self.dialect = self.engine.dialect.name
        metadata = MetaData()
        self.table = job_table(path.table, metadata)
        self._versions = versions_table(metadata)
        self._ensure_table()

    @classmethod
    def open(cls, location: str | None = None, table: str | None = None) -> JobStore:
        """The store at a table path (None: DBDICT_DB, else the embedded default)."""
        return cls(table_path(location, table))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Connection]:
        """A transaction; database failures become one clear StoreError, password masked."""
        try:
            with self.engine.begin() as connection:
                yield connection
        except DBAPIError as error:
            detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
            if self.path.url.password:
                detail = detail.replace(str(self.path.url.password), "***")
            raise StoreError(f"database error on {self.path}: {detail}") from None

    def _ensure_table(self) -> None:
        """Create the table and its booking index on first use, and check its schema version."""
        key = (str(self.path.url), self.path.table, os.getpid())
        if key in _READY:
            return
        with self._transaction() as connection:
            if self.dialect == "postgresql":  # concurrent first uses must not race on CREATE
                connection.execute(select(func.pg_advisory_xact_lock(0x0DBD1C7)))
            self._versions.create(connection, checkfirst=True)
            existed = self.engine.dialect.has_table(connection, self.path.table)
            version = connection.scalar(
                select(self._versions.c.version).where(
                    self._versions.c.table_name == self.path.table
                )
            )
            if existed and version is None:
                raise StoreError(f"table {self.path} exists but is not a dbdict job table")
            if version is not None and version > SCHEMA_VERSION:
                raise StoreError(
                    f"table {self.path} has schema version {version}; "
                    f"this dbdict knows up to {SCHEMA_VERSION}: upgrade dbdict-celery"
                )
            if not existed:
                self.table.create(connection)
                connection.execute(
                    insert(self._versions).values(
                        table_name=self.path.table, version=SCHEMA_VERSION
                    )
                )
        _READY.add(key)

    # -- inserting -------------------------------------------------------------------------

    def insert(
        self, jobs: Iterable[NewJob], batch_size: int = BATCH_SIZE
    ) -> Iterator[list[Inserted]]:
        """Insert jobs in batches (a few statements per batch, none per job), yielding
        each committed batch.

        A job whose (experiment, params) is already in the table is not inserted
        again: it comes back with `created=False` and the existing row's id.
        """
        batch: list[NewJob] = []
        for job in jobs:
            batch.append(job)
            if len(batch) >= batch_size:
                yield self._insert_batch(batch)
                batch = []
        if batch:
            yield self._insert_batch(batch)

    def _insert_batch(self, batch: Sequence[NewJob]) -> list[Inserted]:
        t = self.table
        unique = {job.param_hash: job for job in batch}
        with self._transaction() as connection:
            if self.dialect == "postgresql":
                created = self._copy_insert(connection, unique)
            else:
                created = self._values_insert(connection, unique)
            missing = [digest for digest in unique if digest not in created]
            known = select(t.c.param_hash, t.c.id).where(t.c.param_hash.in_(missing))
            existing = {digest: id_ for digest, id_ in connection.execute(known)} if missing else {}
        ids = {**existing, **created}
        return [Inserted(ids[job.param_hash], job, job.param_hash in created) for job in batch]

    def _values_insert(self, connection: Connection, jobs: dict[str, NewJob]) -> dict[str, int]:
        """Multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (SQLite)."""
        t = self.table
        rows = [
            {
                "experiment": job.experiment,
                "params": job.params,
                "state": job.params,
                "param_hash": digest,
                "priority": job.priority,
                "exproot": job.exproot,
            }
            for digest, job in jobs.items()
        ]
        statement = (
            sqlite.insert(t)
            .on_conflict_do_nothing(index_elements=["param_hash"])
            .returning(t.c.id, t.c.param_hash)
        )
        return {digest: id_ for id_, digest in connection.execute(statement, rows)}

    def _copy_insert(self, connection: Connection, jobs: dict[str, NewJob]) -> dict[str, int]:
        """COPY into a session-temporary staging table, then one INSERT ... SELECT (Postgres).

        COPY is several times faster than multi-row INSERT; the INSERT ... SELECT
        keeps ON CONFLICT deduplication and returns the new ids.
        """
        connection.execute(CreateTable(_STAGING, if_not_exists=True))
        columns = ", ".join(column.name for column in _STAGING.c)
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY {_STAGING.name} ({columns}) FROM STDIN") as copy:
            for digest, job in jobs.items():
                copy.write_row(
                    (job.experiment, json.dumps(job.params), digest, job.priority, job.exproot)
                )
        t, staged = self.table, _STAGING.c
        statement = (
            postgresql.insert(t)
            .from_select(
                ["experiment", "params", "state", "param_hash", "priority", "exproot"],
                select(
                    staged.experiment,
                    staged.params,
                    staged.params,
                    staged.param_hash,
                    staged.priority,
                    staged.exproot,
                ),
            )
            .on_conflict_do_nothing(index_elements=["param_hash"])
            .returning(t.c.id, t.c.param_hash)
        )
        return {digest: id_ for id_, digest in connection.execute(statement)}

    # -- one run of a job ------------------------------------------------------------------

    def book(
        self,
        job_id: int | None = None,
        host: str | None = None,
        pid: int | None = None,
        exclude: Collection[int] = (),
    ) -> Job | None:
        """Mark a START job RUNNING for this run and return it, or None if there is none.

        Without `job_id`: the highest-priority START job not in `exclude`,
        oldest first among equals. With `job_id`: that job, only if it is START
        (a duplicate message for a job already running or finished books nothing).
        """
        t = self.table
        if job_id is None:
            pick = (
                select(t.c.id)
                .where(t.c.status == Status.START, t.c.id.not_in(list(exclude)))
                .order_by(t.c.priority.desc(), t.c.id)
                .limit(1)
            )
            if self.dialect == "postgresql":
                pick = pick.with_for_update(skip_locked=True)
            which: ColumnElement[bool] = t.c.id == pick.scalar_subquery()
        else:
            which = t.c.id == job_id
        statement = (
            update(t)
            .where(which, t.c.status == Status.START)
            .values(
                status=Status.RUNNING,
                run_id=uuid.uuid4().hex,
                host=host or socket.gethostname(),
                pid=os.getpid() if pid is None else pid,
                attempts=t.c.attempts + 1,
                started_at=func.now(),
                heartbeat_at=func.now(),
                finished_at=None,
            )
            .returning(*t.c)
        )
        with self._transaction() as connection:
            row = connection.execute(statement).first()
        return Job.from_row(row) if row is not None else None

    def _owned_by(self, job: Job) -> ColumnElement[bool]:
        t = self.table
        return and_(t.c.id == job.id, t.c.run_id == job.run_id, t.c.status == Status.RUNNING)

    def _update_owned(self, job: Job, what: str, **values: Any) -> bool:
        with self._transaction() as connection:
            done = connection.execute(
                update(self.table).where(self._owned_by(job)).values(**values)
            )
            if done.rowcount == 1:
                return True
            status = connection.scalar(select(self.table.c.status).where(self.table.c.id == job.id))
        now = "gone" if status is None else Status(status).name
        log.warning("job %s is no longer this run's (it is %s): %s not recorded", job.id, now, what)
        return False

    def save(self, job: Job, state: dict[str, Any], **columns: Any) -> bool:
        """Record a run's current (flattened) state; False if the job is no longer this run's.

        `columns` may also set where the run keeps its files: workdir, exproot, task_id.
        """
        unknown = set(columns) - _RUN_COLUMNS
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} from a run")
        return self._update_owned(job, "state", state=state, heartbeat_at=func.now(), **columns)

    def heartbeat(self, job: Job) -> bool:
        """Tell the table the run is alive; False if the job is no longer this run's."""
        return self._update_owned(job, "heartbeat", heartbeat_at=func.now())

    def finish(
        self,
        job: Job,
        status: Status,
        state: dict[str, Any] | None = None,
        error: str | None = None,
        priority: float | None = None,
    ) -> bool:
        """End a run: DONE, FAILED (with its traceback), CANCELLED, or back to START.

        False (and nothing changed) if the job is no longer this run's.
        """
        values: dict[str, Any] = {"status": status, "heartbeat_at": func.now()}
        values["finished_at"] = None if status == Status.START else func.now()
        if status == Status.START:
            values["run_id"] = None
        if state is not None:
            values["state"] = state
        if error is not None:
            values["error"] = error
        if priority is not None:
            values["priority"] = priority
        return self._update_owned(job, f"outcome {status.name}", **values)

    # -- changing jobs from outside a run ---------------------------------------------------

    def cancel(self, job_ids: Sequence[int]) -> list[int]:
        """Make START and RUNNING jobs CANCELLED; returns the ids that changed."""
        return self._set_status(
            job_ids, (Status.START, Status.RUNNING), Status.CANCELLED, finished_at=func.now()
        )

    def requeue(
        self,
        job_ids: Sequence[int],
        from_statuses: Sequence[Status] = (Status.FAILED, Status.CANCELLED),
        priority: float | None = None,
    ) -> list[int]:
        """Put jobs back to START (their state kept, to resume from); returns the ids changed."""
        extra = {} if priority is None else {"priority": priority}
        return self._set_status(job_ids, from_statuses, Status.START, run_id=None, **extra)

    def _set_status(
        self, job_ids: Sequence[int], from_statuses: Sequence[Status], to: Status, **values: Any
    ) -> list[int]:
        t = self.table
        statement = (
            update(t)
            .where(t.c.id.in_(list(job_ids)), t.c.status.in_(list(from_statuses)))
            .values(status=to, **values)
            .returning(t.c.id)
        )
        with self._transaction() as connection:
            return sorted(connection.scalars(statement))

    # -- queries ---------------------------------------------------------------------------

    def get(self, job_id: int) -> Job:
        """One job in full; JobNotFound if there is no such id."""
        with self._transaction() as connection:
            row = connection.execute(select(self.table).where(self.table.c.id == job_id)).first()
        if row is None:
            raise JobNotFound(f"no job {job_id} in {self.path}")
        return Job.from_row(row)

    def counts(self) -> dict[Status, int]:
        """The number of jobs in each status (every status listed, zeros included)."""
        t = self.table
        with self._transaction() as connection:
            grouped = connection.execute(select(t.c.status, func.count()).group_by(t.c.status))
            found = {status: count for status, count in grouped}
        return {status: int(found.get(status, 0)) for status in Status}

    def jobs(
        self,
        status: Status | None = None,
        where: Iterable[str | Filter] = (),
        limit: int | None = None,
    ) -> list[Job]:
        """Jobs in id order, filtered on status and on values (`lr>0.01`, `model.kind=cnn`)."""
        t = self.table
        query = select(t).order_by(t.c.id).limit(limit)
        if status is not None:
            query = query.where(t.c.status == status)
        for condition in where:
            parsed = condition if isinstance(condition, Filter) else Filter.parse(condition)
            query = query.where(parsed.clause(t, self.dialect))
        with self._transaction() as connection:
            return [Job.from_row(row) for row in connection.execute(query)]
