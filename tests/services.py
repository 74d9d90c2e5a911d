"""The services the integration tests use: every address is here, and the tests only ever
touch what they make themselves, so running them on a workstation loses nobody's data.

- PostgreSQL: a database of the session's own (`dbdict_test_<random>`), created at
  the start and dropped at the end, on the server of `DBDICT_TEST_POSTGRES`
  (default `postgresql://root@127.0.0.1:5432/postgres`, used only to create and drop it).
- Redis: a private `redis-server` on a free loopback port, without persistence,
  stopped at the end (`DBDICT_TEST_REDIS_SERVER` names the binary).
- RabbitMQ: a vhost of the session's own on the server of `DBDICT_TEST_AMQP`
  (default `amqp://guest:guest@127.0.0.1:5672`), made and deleted with `rabbitmqctl`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

POSTGRES_SERVER = os.environ.get(
    "DBDICT_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres"
)
AMQP_SERVER = os.environ.get("DBDICT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
REDIS_SERVER = os.environ.get("DBDICT_TEST_REDIS_SERVER", "redis-server")


def _name() -> str:
    return f"dbdict_test_{uuid.uuid4().hex[:10]}"


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new, empty database; its URL (with no table). Dropped afterwards."""
    from sqlalchemy import create_engine, make_url, text

    server = make_url(POSTGRES_SERVER).set(drivername="postgresql+psycopg")
    name = _name()
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name, drivername="postgresql").render_as_string(
            hide_password=False
        )
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A private redis-server on a free loopback port; its URL."""
    from tests.conftest import free_port, wait_until

    binary = shutil.which(REDIS_SERVER)
    if binary is None:
        pytest.skip(f"no {REDIS_SERVER} to start a private Redis (install redis-server)")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
         "no", "--dir", str(directory), "--logfile", str(directory / "redis.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"redis://127.0.0.1:{port}/0"
    try:
        wait_until(lambda: _redis_answers(url) or server.poll() is not None,
                   "the private redis-server to answer", timeout=30)  # fmt: skip
        assert server.poll() is None, (directory / "redis.log").read_text(errors="replace")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1).ping())
    except redis.ConnectionError:
        return False


@contextlib.contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A vhost of our own on the RabbitMQ server, for its guest user; its URL."""
    rabbitmqctl = shutil.which("rabbitmqctl")
    if rabbitmqctl is None:
        pytest.skip("no rabbitmqctl to make a private RabbitMQ vhost")
    vhost = _name()
    user = AMQP_SERVER.partition("://")[2].partition(":")[0] or "guest"
    _rabbitmqctl(rabbitmqctl, "add_vhost", vhost)
    try:
        _rabbitmqctl(rabbitmqctl, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
        yield f"{AMQP_SERVER.rstrip('/')}/{vhost}"
    finally:
        _rabbitmqctl(rabbitmqctl, "delete_vhost", vhost)


def _rabbitmqctl(binary: str, *args: str) -> None:
    done = subprocess.run([binary, "-q", *args], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, f"rabbitmqctl {' '.join(args)}: {done.stderr or done.stdout}"
