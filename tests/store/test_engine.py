"""The Postgres engine hands out pooled connections checked without a round trip, and
pinged only after they idled."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from dbdict_celery.errors import StoreError
from dbdict_celery.store import engine
from dbdict_celery.store.store import JobStore
from tests.conftest import wait_until


def _kill_pooled_session(store: JobStore, server_url: str) -> None:
    """End, from outside, the server session behind the store's one pooled connection, and
    wait until it is gone."""
    with store.engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))

        def gone() -> bool:
            alive = "SELECT count(*) FROM pg_stat_activity WHERE pid = %s"
            row = admin.execute(alive, (pid,)).fetchone()
            return row is not None and row[0] == 0

        wait_until(gone, "the terminated session to end")


@pytest.fixture
def store(postgres_location: str) -> JobStore:
    store = JobStore.open(postgres_location)
    store.engine.dispose()  # the pool starts empty: its one connection is made by the test
    return store


def test_a_connection_the_server_closed_is_replaced_without_a_ping(
    store: JobStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart, a crash or a terminated session: the connection's socket says so."""
    monkeypatch.setattr(engine, "PING_AFTER_IDLE", 3600.0)  # used a moment ago: no ping
    _kill_pooled_session(store, postgres_url)
    assert store.summary().counts == {}, "the query ran on a fresh connection"


def test_a_connection_that_idled_is_pinged_before_use(
    store: JobStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection dropped silently (no word from the server) is found by the ping."""
    monkeypatch.setattr(engine, "_closed_by_server", lambda connection: False)
    _kill_pooled_session(store, postgres_url)
    monkeypatch.setattr(engine, "PING_AFTER_IDLE", 3600.0)
    with pytest.raises(StoreError, match="database error"):
        store.summary()  # neither check: the dead connection is used, and fails once
    _kill_pooled_session(store, postgres_url)
    monkeypatch.setattr(engine, "PING_AFTER_IDLE", 0.0)  # every connection has idled enough
    assert store.summary().counts == {}, "the ping found it dead; a fresh one was used"
