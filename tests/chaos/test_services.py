"""Faults 4 and 5: the broker and the database restarted while jobs are queued and run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from signal import SIGINT, SIGQUIT

import pytest

from tests.chaos.conftest import Chaos, chaos_on
from tests.chaos.faults import restart_rabbitmq
from tests.deployments import postgres_redis
from tests.services import PostgresServer, RedisServer, redis_server


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    directory = tmp_path / "redis"
    directory.mkdir()
    with redis_server(directory) as server:
        yield server


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture
def chaos_on_private_redis(
    tmp_path: Path,
    postgres_location: str,
    private_redis: RedisServer,
    request: pytest.FixtureRequest,
) -> Iterator[Chaos]:
    yield from chaos_on(postgres_redis(tmp_path, postgres_location, private_redis.url), request)


@pytest.fixture
def chaos_on_rabbitmq(
    tmp_path: Path, postgres_location: str, amqp_url: str, request: pytest.FixtureRequest
) -> Iterator[Chaos]:
    yield from chaos_on(postgres_redis(tmp_path, postgres_location, amqp_url), request)


@pytest.fixture
def chaos_on_private_postgres(
    tmp_path: Path, private_postgres: PostgresServer, redis_url: str, request: pytest.FixtureRequest
) -> Iterator[Chaos]:
    location = f"{private_postgres.url}/chaos_jobs"
    yield from chaos_on(postgres_redis(tmp_path, location, redis_url), request)


def test_redis_restarted_without_persistence(
    chaos_on_private_redis: Chaos, private_redis: RedisServer
) -> None:
    """Every queued message is lost, twice: reconcile sends the START jobs again, running
    jobs finish, and nothing runs twice."""
    chaos = chaos_on_private_redis
    chaos.schedule()
    chaos.reconcile_every(1.0)
    chaos.deployment.start_worker("-c", "4")
    for share in (0.25, 0.6):
        chaos.midway(share)
        private_redis.stop()
        private_redis.start()
    chaos.check("Redis restarted, empty", timeout=120 + chaos.jobs)
    resends = (chaos.deployment.cwd / "reconcile.log").read_text().count("without a message")
    assert resends >= 2, "each restart lost queued messages, which reconcile sent again"


def test_rabbitmq_restarted(chaos_on_rabbitmq: Chaos) -> None:
    """RabbitMQ's application stopped and started while jobs run: connections drop, the
    durable queue comes back, unacknowledged messages are delivered again."""
    chaos = chaos_on_rabbitmq
    chaos.schedule()
    chaos.reconcile_every(1.0)
    chaos.deployment.start_worker("-c", "4")
    chaos.midway(0.3)
    restart_rabbitmq()
    chaos.check("RabbitMQ restarted", timeout=120 + chaos.jobs)
    assert "Connection to broker lost" in chaos.deployment.workers[0].text()


def test_postgres_restarted_while_jobs_run(
    chaos_on_private_postgres: Chaos, private_postgres: PostgresServer
) -> None:
    """A fast shutdown, then a crash (immediate shutdown), each followed by a start: the
    workers reconnect, their saves wait for the database, and no row is half-written."""
    chaos = chaos_on_private_postgres
    chaos.schedule()
    chaos.reconcile_every(1.0)
    chaos.deployment.start_worker("-c", "4")
    for share, how in ((0.25, SIGINT), (0.6, SIGQUIT)):
        chaos.midway(share)
        private_postgres.stop(how)
        private_postgres.start()
    chaos.check("Postgres restarted", timeout=120 + chaos.jobs)
    assert "not recorded yet, trying again" in chaos.deployment.workers[0].text(), (
        "saves met the restarts and waited for the database"
    )
