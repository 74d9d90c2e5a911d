"""Job tables on the real Postgres (127.0.0.1:5432, database test) and on SQLite."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from dbdict_celery.store.store import JobStore
from tests.integration.deployments import AMQP, REDIS, Deployment, embedded, postgres_redis

POSTGRES = "postgresql://root@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A table path to a fresh, empty job table on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db/jobs"
        return
    yield from _postgres_table()


@pytest.fixture
def postgres_location() -> Iterator[str]:
    """A fresh Postgres job table's path, dropped afterwards."""
    yield from _postgres_table()


@pytest.fixture(params=["postgres-redis", "embedded"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Each deployment in turn: Postgres and Redis, then the embedded default."""
    if request.param == "embedded":
        chosen = embedded(tmp_path)
    else:
        chosen = postgres_redis(tmp_path, request.getfixturevalue("postgres_location"))
    yield from _closing(chosen)


@pytest.fixture
def cluster(tmp_path: Path, postgres_location: str) -> Iterator[Deployment]:
    """Postgres and Redis: for what needs a broker that broadcasts (revoke) or many workers."""
    yield from _closing(postgres_redis(tmp_path, postgres_location))


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_location: str
) -> Iterator[Deployment]:
    """Postgres with each server broker in turn."""
    broker = REDIS if request.param == "redis" else AMQP
    yield from _closing(postgres_redis(tmp_path, postgres_location, broker))


def _closing(deployment: Deployment) -> Iterator[Deployment]:
    try:
        yield deployment
    finally:
        deployment.close()


def _postgres_table() -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES}/{name}"
    engine = create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))  # made above; views too
        if engine.dialect.has_table(connection, "dbdict_schema"):
            connection.execute(
                text("DELETE FROM dbdict_schema WHERE table_name = :name"), {"name": name}
            )
    engine.dispose()


@pytest.fixture
def store(location: str) -> JobStore:
    return JobStore.open(location)
