"""Workers started without `-n` on one host each get a name of their own: on RabbitMQ two of
the same name cannot both hold their control queue, and the second one died."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import wait_until
from tests.deployments import (
    CELERY,
    Deployment,
    Worker,
    environment,
    postgres_redis,
    scheduled,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def rabbitmq(tmp_path: Path, postgres_location: str, amqp_url: str) -> Iterator[Deployment]:
    """Postgres, and the session's RabbitMQ vhost as the broker; its workers killed after."""
    deployment = postgres_redis(tmp_path, postgres_location, amqp_url)
    try:
        yield deployment
    finally:
        deployment.close()


def _unnamed_worker(deployment: Deployment, number: int) -> Worker:
    """`celery -A dbdict_celery worker -c 1` as a user types it: no -n; once it is ready."""
    log = deployment.cwd / f"unnamed{number}.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [CELERY, "-A", "dbdict_celery", "worker", "--loglevel", "INFO", "-c", "1"],
            cwd=deployment.cwd,
            env=environment(deployment.env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log)
    deployment.workers.append(worker)  # killed by the fixture, whatever happens
    return worker.wait_ready()


def test_two_workers_without_a_name_on_one_host_both_run_jobs(rabbitmq: Deployment) -> None:
    jobs = scheduled(rabbitmq, "tests.experiments.quiet", "seconds=600", "n=range(3)")
    unnamed = [_unnamed_worker(rabbitmq, number) for number in (1, 2)]
    named = rabbitmq.start_worker("-c", "1")  # with -n w3-PID@%h
    store = rabbitmq.store()
    wait_until(lambda: all(store.get(job.id).status is Status.RUNNING for job in jobs),
               "the three jobs to run, one on each worker", timeout=60)  # fmt: skip
    names = {str(store.attempts(job.id)[0].worker) for job in jobs}
    host = socket.gethostname()
    by_pid = {f"dbdict-{worker.process.pid}@{host}" for worker in unnamed}
    assert by_pid <= names, f"each unnamed worker is named by its pid: {names}"
    (given,) = names - by_pid
    assert given.startswith("w3-"), "a name given with -n is kept"
    for worker in [*unnamed, named]:
        assert worker.process.poll() is None, worker.text()
        assert "RESOURCE_LOCKED" not in worker.text()
