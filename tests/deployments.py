"""Where jobs are scheduled and run in the Celery tests: a job database, a broker, workers.

Two deployments: Postgres with Redis (a cluster), and the embedded default
(SQLite job database and SQLite broker in a fresh DBDICT_HOME, nothing
configured). Workers are real `celery -A dbdict_celery worker` processes,
each in its own session so that the test can kill it and its pool whole.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import amqp.exceptions
import kombu
import redis

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE
from tests.conftest import DBDICT, REPO, dbdict, live_processes, wait_until

CELERY = str(Path(sys.executable).with_name("celery"))


@dataclass
class Worker:
    """A `celery -A dbdict_celery worker` subprocess and its log file."""

    process: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self) -> Worker:
        wait_until(lambda: "ready." in self.text() or self.process.poll() is not None,
                   "the worker to start", timeout=60)  # fmt: skip
        assert self.process.poll() is None, f"the worker died at start:\n{self.text()}"
        return self

    def signal(self, signum: signal.Signals) -> None:
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL the worker and every process of its session (its pool children, and
        experiments in process groups of their own)."""
        kill_session(self.process)


def kill_session(leader: subprocess.Popen[Any]) -> None:
    """SIGKILL a process started with `start_new_session` and every process of its session;
    return once none is left. Its session, not its process group: an experiment runs in a
    process group of its own."""
    with contextlib.suppress(ProcessLookupError):
        leader.kill()  # first, so that it starts no more
    leader.wait(timeout=30)

    def killed_all() -> bool:
        members = [process.pid for process in live_processes() if process.session == leader.pid]
        for pid in members:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        return not members

    wait_until(killed_all, f"the processes of session {leader.pid} to end", timeout=30)


@dataclass
class Deployment:
    """A job database and broker, and the directory the commands run in."""

    name: str
    location: str  # the table path, for this test process
    env: dict[str, str]  # what `dbdict` and the workers see
    exproot: Path
    cwd: Path
    workers: list[Worker] = field(default_factory=list)

    def store(self) -> JobStore:
        return JobStore.open(self.location)

    def dbdict(
        self, *args: str, timeout: float = 120, cwd: Path | None = None
    ) -> subprocess.CompletedProcess[str]:
        return dbdict(*args, cwd=cwd or self.cwd, timeout=timeout, **self.env)

    def job_files(self, job_id: int) -> Path:
        path = self.store().path
        return self.exproot / path.dbname / path.table / str(job_id)

    def start_worker(
        self,
        *options: str,
        via_dbdict: bool = False,
        cwd: Path | None = None,
        on: Callable[..., list[str]] | None = None,
        **env: str,
    ) -> Worker:
        """Start `celery -A dbdict_celery worker` (or `dbdict worker`) with `options`, in
        `cwd` (default: the deployment's directory), perhaps `on` a test host (the command
        that runs a program there); returns once it is ready."""
        number = len(self.workers) + 1
        log = self.cwd / f"worker{number}.log"
        start = [DBDICT, "worker"] if via_dbdict else [CELERY, "-A", "dbdict_celery", "worker"]
        command = [*start, "--loglevel", "INFO", "-n", f"w{number}-{os.getpid()}@%h",
                   "--without-mingle", "--without-gossip", *options]  # fmt: skip
        with open(log, "wb") as output:
            process = subprocess.Popen(
                on(*command) if on else command,
                cwd=cwd or self.cwd,
                env=environment(self.env, env),
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        worker = Worker(process, log)
        self.workers.append(worker)
        return worker.wait_ready()

    def close(self) -> None:
        """Kill every worker started here, pool and experiments with it."""
        for worker in self.workers:
            worker.kill()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def environment(*layers: dict[str, str]) -> dict[str, str]:
    """This process's environment without any DBDICT_* setting, then the given layers."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("DBDICT_")}
    env["PYTHONPATH"] = str(REPO)
    for layer in layers:
        env.update(layer)
    return env


def postgres_redis(tmp_path: Path, postgres_location: str, broker: str) -> Deployment:
    """Postgres job table, and the session's private Redis (emptied first) or its own
    RabbitMQ vhost (the dbdict queue purged first) as the broker."""
    on_redis = broker.startswith("redis")
    if on_redis:
        redis.Redis.from_url(broker).flushdb()
    else:
        _purge_rabbitmq(broker)
    exproot = tmp_path / "exproot"
    env = {
        "DBDICT_DB": postgres_location,  # its table is the default for `dbdict` commands
        "DBDICT_BROKER": broker,
        "DBDICT_EXPROOT": str(exproot),
        "DBDICT_HOME": str(tmp_path / "home"),
        "DBDICT_HEARTBEAT": "1",
    }
    name = "postgres-redis" if on_redis else "postgres-rabbitmq"
    return Deployment(name, postgres_location, env, exproot, tmp_path)


def _purge_rabbitmq(url: str) -> None:
    never_declared = contextlib.suppress(amqp.exceptions.NotFound)  # then nothing to purge
    with kombu.Connection(url) as connection, never_declared:
        cast("amqp.Channel", connection.channel()).queue_purge(QUEUE)  # a pyamqp channel


def embedded(tmp_path: Path) -> Deployment:
    """Nothing configured but a fresh DBDICT_HOME: SQLite job database and broker."""
    home = tmp_path / "home"
    return Deployment("embedded", f"sqlite:///{home}/jobs.db/jobs", {"DBDICT_HOME": str(home)},
                      home / "exproot", tmp_path)  # fmt: skip


def scheduled(deployment: Deployment, *args: str) -> list[Job]:
    """Run `dbdict schedule ARGS` where `deployment` is; every job of its table after."""
    done = deployment.dbdict("schedule", *args)
    assert done.returncode == 0, done.stderr
    return deployment.store().jobs()


def wait_for_statuses(store: JobStore, *wanted: Status, timeout: float = 90) -> None:
    """Wait until every job of the table is in one of `wanted`."""
    wait_until(lambda: store.jobs() and all(job.status in wanted for job in store.jobs()),
               f"every job to be {'/'.join(s.name for s in wanted)}", timeout)  # fmt: skip


def broker_of(deployment: Deployment) -> str:
    """The broker URL of a deployment's workers."""
    return deployment.env["DBDICT_BROKER"]


def redis_messages_waiting(url: str) -> int:
    """Messages in the dbdict queue on a Redis, over all its priority lists."""
    client = redis.Redis.from_url(url)
    return sum(
        int(client.llen(key))
        for key in client.scan_iter(match=f"{QUEUE}*")
        if client.type(key) == b"list"
    )
