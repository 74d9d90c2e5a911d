"""The Postgres engine hands out pooled connections checked only after they idled."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text

from dbdict_celery.errors import StoreError
from dbdict_celery.store import engine
from dbdict_celery.store.store import JobStore


def _kill_pooled_session(store: JobStore, server_url: str) -> None:
    """End, from outside, the server session behind the store's one pooled connection."""
    with store.engine.connect() as connection:
        pid = connection.scalar(text("SELECT pg_backend_pid()"))
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


@pytest.fixture
def store(postgres_location: str) -> JobStore:
    store = JobStore.open(postgres_location)
    store.engine.dispose()  # the pool starts empty: its one connection is made by the test
    return store


def test_a_dead_connection_that_idled_is_replaced_before_use(
    store: JobStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "PING_AFTER_IDLE", 0.0)  # every connection has idled enough
    _kill_pooled_session(store, postgres_url)
    assert store.summary().counts == {}, "the query ran on a fresh connection"


def test_a_connection_used_a_moment_ago_is_not_checked(
    store: JobStore, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cost the idle threshold saves has its price: one transaction fails, then the next
    one works (every caller tries again)."""
    monkeypatch.setattr(engine, "PING_AFTER_IDLE", 3600.0)
    _kill_pooled_session(store, postgres_url)
    with pytest.raises(StoreError, match="database error"):
        store.summary()
    assert store.summary().counts == {}
