"""A database error that is for now (a lost connection, a lock) is asked again; any other
fails at once, its cause chained: on Postgres and SQLite, with the drivers' own errors."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from dbdict_celery.errors import StoreError, TransientStoreError
from dbdict_celery.experiment.provenance import Code
from dbdict_celery.experiment.status import Status
from dbdict_celery.store import store as store_module
from dbdict_celery.store.database_errors import is_transient
from dbdict_celery.store.job import Job, NewJob, Standing
from dbdict_celery.store.store import JobStore
from tests.conftest import free_port
from tests.store.runs import booked

pytestmark = pytest.mark.integration


@pytest.fixture
def run(store: JobStore) -> Job:
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    return booked(store)


@pytest.fixture
def patient(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's write would be asked again for an hour, without a pause between tries."""
    monkeypatch.setattr(store_module, "RUN_WRITE_PATIENCE", 3600.0)
    monkeypatch.setattr(store_module, "RUN_WRITE_RETRY_EVERY", 0.0)


@contextlib.contextmanager
def _asked_once(store: JobStore) -> Iterator[None]:
    """Fail the test, rather than wait an hour, if a write is tried a second time."""
    tries: list[object] = []

    def begin(connection: object) -> None:
        tries.append(connection)
        assert len(tries) == 1, "the write was asked again"

    event.listen(store.engine, "begin", begin)
    try:
        yield
    finally:
        event.remove(store.engine, "begin", begin)
    assert len(tries) == 1


def test_a_broken_statement_fails_at_once_with_its_cause(
    store: JobStore, run: Job, patient: None
) -> None:
    """A column dropped by hand: every save that records the run's code would fail the same."""
    with store.engine.begin() as connection:
        quoted = connection.dialect.identifier_preparer.quote(store.attempt_table.name)
        connection.execute(text(f"ALTER TABLE {quoted} DROP COLUMN code_commit"))
    with _asked_once(store), pytest.raises(StoreError, match="code_commit") as raised:
        store.save(run, {"n": 1}, code=Code(commit="c0ffee", branch="main"))
    assert not isinstance(raised.value, TransientStoreError)
    assert isinstance(raised.value.__cause__, DBAPIError), "the driver's error is its cause"
    assert store.get(run.id).status is Status.RUNNING, "the row is as it was"


def test_a_value_the_column_cannot_take_fails_at_once_with_its_cause(
    postgres_location: str, patient: None
) -> None:
    """Postgres's text cannot hold a NUL character."""
    store = JobStore.open(postgres_location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    job = booked(store)
    with _asked_once(store), pytest.raises(StoreError, match="NUL") as raised:
        store.finish(job, Status.FAILED, error="Traceback: \x00")
    assert not isinstance(raised.value, TransientStoreError)
    assert isinstance(raised.value.__cause__, DBAPIError)


def test_a_run_write_is_asked_again_while_the_database_refuses_connections(
    postgres_location: str, patient: None
) -> None:
    """The server's port is closed for three connection attempts (a restart): the heartbeat
    is asked again until it lands."""
    store = JobStore.open(postgres_location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    job = booked(store)
    closed = free_port()
    refused: list[int] = []

    def refuse(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        if len(refused) < 3:
            refused.append(closed)
            cparams["port"] = closed

    store.engine.dispose()  # no pooled connection: the next write connects
    event.listen(store.engine, "do_connect", refuse)
    try:
        assert store.heartbeat(job) is Standing.OWNED
    finally:
        event.remove(store.engine, "do_connect", refuse)
    assert refused == [closed] * 3


def test_a_database_that_cannot_be_reached_is_named_password_masked() -> None:
    location = f"postgresql://root:s3cret-pw@127.0.0.1:{free_port()}/nowhere/jobs"
    with pytest.raises(TransientStoreError, match="Connection refused") as raised:
        JobStore.open(location)
    assert "root:***@127.0.0.1" in str(raised.value)
    assert isinstance(raised.value.__cause__, DBAPIError)
    assert "s3cret-pw" not in f"{raised.value} {raised.value.__cause__}"


def _sqlite_locked(tmp_path: Path) -> sqlite3.Error:
    """What a writer meets while another holds SQLite's write lock past its busy timeout."""
    database = str(tmp_path / "locked.db")
    holder = sqlite3.connect(database, isolation_level=None)
    waiter = sqlite3.connect(database, timeout=0, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        with pytest.raises(sqlite3.OperationalError) as raised:
            waiter.execute("BEGIN IMMEDIATE")
    finally:
        waiter.close()
        holder.close()
    return raised.value


def _sqlite_broken(tmp_path: Path) -> sqlite3.Error:
    """A statement naming a column that is not there (an OperationalError in sqlite3)."""
    with (
        contextlib.closing(sqlite3.connect(":memory:")) as connection,
        pytest.raises(sqlite3.OperationalError) as raised,
    ):
        connection.execute("SELECT nosuch")
    return raised.value


def _postgres_refused(tmp_path: Path) -> psycopg.Error:
    """A connection to a port nothing listens on (the server down, restarting)."""
    with pytest.raises(psycopg.OperationalError) as raised:
        psycopg.connect(host="127.0.0.1", port=free_port(), dbname="postgres", connect_timeout=5)
    return raised.value


def _postgres_said(sqlstate: str) -> Callable[[Path], psycopg.Error]:
    """The error psycopg raises when the server answers with `sqlstate`."""
    return lambda tmp_path: psycopg.errors.lookup(sqlstate)(f"the server said {sqlstate}")


@pytest.mark.parametrize(
    ("make", "transient"),
    [
        (_sqlite_locked, True),
        (_sqlite_broken, False),
        (_postgres_refused, True),
        (_postgres_said("08006"), True),  # connection_failure
        (_postgres_said("40001"), True),  # serialization_failure
        (_postgres_said("40P01"), True),  # deadlock_detected
        (_postgres_said("55P03"), True),  # lock_not_available
        (_postgres_said("57P01"), True),  # admin_shutdown
        (_postgres_said("22003"), False),  # numeric_value_out_of_range
        (_postgres_said("23505"), False),  # unique_violation
        (_postgres_said("42703"), False),  # undefined_column
        (_postgres_said("28P01"), False),  # invalid_password
    ],
)
def test_errors_for_now_are_told_from_the_others(
    tmp_path: Path, make: Callable[[Path], Exception], transient: bool
) -> None:
    cause = make(tmp_path)
    base = sqlite3.Error if isinstance(cause, sqlite3.Error) else psycopg.Error
    error = DBAPIError.instance("SELECT 1", None, cause, base)
    assert isinstance(error, DBAPIError), "as SQLAlchemy raises the driver's error"
    assert is_transient(error) is transient, cause
