"""Shared test helpers: the real `dbdict` script as a subprocess, and waiting with a deadline;
job tables on the real Postgres (127.0.0.1:5432, database test) and on SQLite, and the
deployments of `tests.deployments`, as fixtures.

Every process the session starts carries SESSION_TAG in its environment (inherited from
this one), so the session can find, name and kill at its end any that outlived it, and
fails the run if there were any: a test leaves nothing running behind it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from dbdict_celery.store.store import JobStore
    from tests.deployments import Deployment

REPO = Path(__file__).resolve().parent.parent
DBDICT = str(Path(sys.executable).with_name("dbdict"))
# Not a DBDICT_* name: the tests drop every DBDICT_* setting from a worker's environment to
# give it a clean configuration, and the tag must survive that.
SESSION_TAG = "PYTEST_DBDICT_SESSION"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos-jobs", type=int, default=300, metavar="N",
        help="jobs in each chaos test's workload (the racing one runs at least 1,000)",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    """Tag this session: every process it starts inherits the tag from this environment."""
    os.environ[SESSION_TAG] = uuid.uuid4().hex


@pytest.hookimpl(trylast=True)  # after the session's fixtures were torn down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run if a process the session started is still running, naming each; kill it."""
    tag = f"{SESSION_TAG}={os.environ[SESSION_TAG]}"
    try:  # a process killed just before is given a moment to be gone
        wait_until(lambda: not tagged_processes(tag), "the session's processes to end", 5)
        return
    except pytest.fail.Exception:
        leftover = tagged_processes(tag)
    for pid in leftover:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"pid {pid}: {command}" for pid, command in sorted(leftover.items())]
    if reporter is None:
        print("processes the tests started outlived the session:", *lines, sep="\n")
    else:
        reporter.write_line("")  # after the progress of the last test
        reporter.write_sep("=", "processes the tests started outlived the session", red=True)
        for line in [*lines, "(killed now: a fixture that starts a process must stop it)"]:
            reporter.write_line(line, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@dataclass(frozen=True)
class Process:
    """A live process, as /proc/PID/stat describes it."""

    pid: int
    parent: int
    session: int


def live_processes() -> list[Process]:
    """Every live process of this machine (zombies left out: they are over, whoever reaps
    them); none where there is no /proc to read."""
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc/self/stat").exists() else ():
        try:
            stat = (entry / "stat").read_text() if entry.name.isdigit() else ""
        except OSError:  # it ended as we looked
            continue
        fields = stat.rpartition(")")[2].split()  # after "pid (command)": state ppid pgrp sid
        if fields and fields[0] != "Z":
            found.append(Process(int(entry.name), int(fields[1]), int(fields[3])))
    return found


def tagged_processes(tag: str) -> dict[int, str]:
    """Every live process but this one whose environment holds `tag` (NAME=value), with
    its command line."""
    found: dict[int, str] = {}
    for process in live_processes():
        proc = Path("/proc") / str(process.pid)
        try:  # another user's process is not ours to read; one that ended is gone
            environ = (proc / "environ").read_bytes().split(b"\0")
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if tag.encode() in environ and process.pid != os.getpid():
            found[process.pid] = command.decode(errors="replace").strip()
    return found


@pytest.fixture(scope="session", autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Tests never touch the user's own embedded database and broker. The user's DBDICT_TEST_*
    settings stay: they say where the test services are (tests/services.py reads them when a
    fixture first needs a service)."""
    from dbdict_celery.config import broker_url

    home = tmp_path_factory.mktemp("dbdict-home")
    settings = [name for name in os.environ if name.startswith("DBDICT_")]
    saved = {name: os.environ.pop(name) for name in settings if not name.startswith("DBDICT_TEST_")}
    os.environ["DBDICT_HOME"] = str(home)
    with app_on_broker(broker_url()):  # the app was made at import, on the user's broker
        yield home
    del os.environ["DBDICT_HOME"]
    os.environ.update(saved)


@contextlib.contextmanager
def app_on_broker(url: str) -> Iterator[None]:
    """dbdict's app, in this process, sends to and reads from `url` within the block. Its
    connection and producer pools are dropped on the way in and out: a pool kept would go
    on sending to the broker before."""
    import kombu.pools

    from dbdict_celery.worker.app import app, broker_settings

    saved = {name: app.conf[name] for name in broker_settings(url)}

    def drop_pools() -> None:
        kombu.pools.reset()  # closes every pooled connection and producer of this process
        app.close()  # the app's connection pool
        vars(app).pop("amqp", None)  # and with it its producer pool, which close() keeps

    drop_pools()
    app.conf.update(broker_settings(url))
    try:
        yield
    finally:
        drop_pools()
        app.conf.update(saved)


@pytest.fixture(autouse=True)
def fresh_experiment_process() -> Iterator[None]:
    """A test that runs jobs in this process gets an experiment process forked for it (one
    forked before would keep an earlier test's settings and patches), closed at its end."""
    yield
    supervisor = sys.modules.get("dbdict_celery.worker.supervisor")
    if supervisor is not None:
        supervisor.close_experiment_process()


def dbdict_env(**extra: str) -> dict[str, str]:
    """The environment for a dbdict subprocess: examples and test experiments importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def dbdict(
    *args: str, cwd: Path, timeout: float = 60, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run the installed `dbdict` command to completion and capture its output."""
    return subprocess.run(
        [DBDICT, *args],
        cwd=cwd,
        env=dbdict_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_dbdict(*args: str, cwd: Path, **env: str) -> subprocess.Popen[str]:
    """Start the installed `dbdict` command in the background."""
    return subprocess.Popen(
        [DBDICT, *args],
        cwd=cwd,
        env=dbdict_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def read_conf(path: Path) -> dict[str, Any]:
    """A conf file as a flat dict, read with the project's own parser."""
    from dbdict_celery.experiment.params import parse_lines

    with open(path, encoding="utf-8") as lines:
        return parse_lines(lines)


def git(repo: Path, *arguments: str) -> str:
    """Run git in `repo` as a test author; what it printed, stripped."""
    done = subprocess.run(
        ["git", "-c", "user.name=Test", "-c", "user.email=test@example.org", *arguments],
        cwd=repo, capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return done.stdout.strip()


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def ssh_command(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private sshd on a loopback port; yields the DBDICT_SSH_COMMAND that reaches it."""
    from tests.services import ServiceUnavailable, ssh_server

    with contextlib.ExitStack() as stack:
        try:
            command = stack.enter_context(ssh_server(tmp_path_factory.mktemp("sshd")))
        except ServiceUnavailable as error:
            pytest.skip(str(error))
        yield command


# The fixtures below import `tests.deployments` and the job store when they run: that
# module imports the helpers above, and the unit tests need neither.


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The session's own Postgres database (see tests/services.py)."""
    from tests.services import postgres_database

    with postgres_database() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's private Redis server."""
    from tests.services import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """The session's own RabbitMQ vhost."""
    from tests.services import rabbitmq_vhost

    with rabbitmq_vhost() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A table path to a fresh, empty job table on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/jobs.db/jobs"
        return
    yield from _postgres_table(request.getfixturevalue("postgres_url"))


@pytest.fixture
def postgres_location(postgres_url: str) -> Iterator[str]:
    """A fresh Postgres job table's path, dropped afterwards."""
    yield from _postgres_table(postgres_url)


@pytest.fixture(params=["postgres-redis", "embedded"])
def deployment(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Deployment]:
    """Each deployment in turn: Postgres and Redis, then the embedded default."""
    from tests.deployments import embedded, postgres_redis

    if request.param == "embedded":
        chosen = embedded(tmp_path)
    else:
        location = request.getfixturevalue("postgres_location")
        chosen = postgres_redis(tmp_path, location, request.getfixturevalue("redis_url"))
    with chosen:
        yield chosen


@pytest.fixture
def cluster(tmp_path: Path, postgres_location: str, redis_url: str) -> Iterator[Deployment]:
    """Postgres and Redis: for what needs a broker that broadcasts (revoke) or many workers."""
    from tests.deployments import postgres_redis

    with postgres_redis(tmp_path, postgres_location, redis_url) as deployment:
        yield deployment


@pytest.fixture(params=["redis", "rabbitmq"])
def any_broker(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_location: str
) -> Iterator[Deployment]:
    """Postgres with each server broker in turn."""
    from tests.deployments import postgres_redis

    broker = request.getfixturevalue("redis_url" if request.param == "redis" else "amqp_url")
    with postgres_redis(tmp_path, postgres_location, broker) as deployment:
        yield deployment


def _postgres_table(database: str) -> Iterator[str]:
    from sqlalchemy import create_engine, text

    name = f"t_{uuid.uuid4().hex[:12]}"
    yield f"{database}/{name}"
    engine = create_engine(database.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))  # made above; views too
        connection.execute(text(f"DROP TABLE IF EXISTS {name}_attempt"))  # its history
        connection.execute(text(f"DROP TABLE IF EXISTS {name}_metric"))  # its curves
        if engine.dialect.has_table(connection, "dbdict_schema"):
            connection.execute(
                text("DELETE FROM dbdict_schema WHERE table_name = :name"), {"name": name}
            )
    engine.dispose()


@pytest.fixture
def store(location: str) -> JobStore:
    from dbdict_celery.store.store import JobStore

    return JobStore.open(location)
