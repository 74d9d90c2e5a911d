"""The services the integration tests use: every address is here, and the tests only ever
touch what they make themselves, so running them on a workstation loses nobody's data.

- PostgreSQL: a database of the session's own (`dbdict_test_<random>`), created at
  the start and dropped at the end, on the server of `DBDICT_TEST_POSTGRES`
  (default `postgresql://root@127.0.0.1:5432/postgres`, used only to create and drop it).
- Redis: a private `redis-server` on a free loopback port, without persistence,
  stopped at the end (`DBDICT_TEST_REDIS_SERVER` names the binary).
- RabbitMQ: a vhost of the session's own on the server of `DBDICT_TEST_AMQP`
  (default `amqp://guest:guest@127.0.0.1:5672`), made and deleted with `rabbitmqctl`.
- ssh: a private `sshd` on a free loopback port, reached with a key made for it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
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


class RedisServer:
    """A private redis-server on a free loopback port that keeps nothing on disk: stopping
    it loses every message, as a Redis restarted without persistence does."""

    def __init__(self, directory: Path, password: str | None = None) -> None:
        from tests.conftest import free_port

        binary = shutil.which(REDIS_SERVER)
        if binary is None:
            pytest.skip(f"no {REDIS_SERVER} to start a private Redis (install redis-server)")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.password = password
        auth = f":{password}@" if password else ""
        self.url = f"redis://{auth}127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from tests.conftest import wait_until

        auth = ["--requirepass", self.password] if self.password else []
        self.process = server = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.directory),
             "--logfile", str(self.directory / "redis.log"), *auth],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: _redis_answers(self.url) or server.poll() is not None,
                   "the private redis-server to answer", timeout=30)  # fmt: skip
        assert server.poll() is None, (self.directory / "redis.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=30)


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    """A private Redis, running; stopped afterwards."""
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()


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


class PostgresServer:
    """A private PostgreSQL server of its own data directory and port, for the faults that
    restart or crash the database (the shared server is never touched). Trust auth, one
    superuser `root`; run as the `postgres` user when the tests run as root."""

    def __init__(self) -> None:
        from tests.conftest import free_port

        self.bin = _postgres_bin()
        self.directory = Path(tempfile.mkdtemp(prefix="dbdict-test-pg-"))  # outside pytest's 0700
        self.port = free_port()
        self.url = f"postgresql://root@127.0.0.1:{self.port}/postgres"
        self.process: subprocess.Popen[bytes] | None = None
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        done = subprocess.run(
            [*self._as_owner(), str(self.bin / "initdb"), "-D", str(self.directory / "data"),
             "-U", "root", "-A", "trust", "--no-sync", "-E", "UTF8"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert done.returncode == 0, f"initdb: {done.stderr}"

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        from tests.conftest import wait_until

        with open(self.directory / "server.log", "ab") as log:
            self.process = server = subprocess.Popen(
                [*self._as_owner(), str(self.bin / "postgres"), "-D", str(self.directory / "data"),
                 "-p", str(self.port), "-k", str(self.directory), "-c", "fsync=off",
                 "-c", "listen_addresses=127.0.0.1"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_until(lambda: self._answers() or server.poll() is not None,
                   "the private postgres to answer", timeout=60)  # fmt: skip
        assert server.poll() is None, (self.directory / "server.log").read_text(errors="replace")

    def _answers(self) -> bool:
        done = subprocess.run([str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p",
                               str(self.port), "-q"], check=False, timeout=30)  # fmt: skip
        return done.returncode == 0

    def stop(self, signum: signal.Signals = signal.SIGINT) -> None:
        """Stop the server: SIGINT is a fast shutdown, SIGQUIT an immediate one (a crash:
        the next start recovers from the write-ahead log)."""
        if self.process is None or self.process.poll() is not None:
            return
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signum)
        self.process.wait(timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb is None:
        pytest.skip("no initdb to start a private PostgreSQL server")
    return Path(initdb).parent


class ServiceUnavailable(Exception):
    """A service this machine cannot run (the tests using it are skipped, saying why)."""


def _find_or_install_sshd() -> str | None:
    """The sshd binary; installs Debian's openssh-server when root and it is missing."""
    for candidate in (shutil.which("sshd"), "/usr/sbin/sshd"):
        if candidate and os.path.exists(candidate):
            return candidate
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return None
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-q", "openssh-server"]
    for command in (install, ["apt-get", "update", "-q"], install):
        subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if os.path.exists("/usr/sbin/sshd"):
            return "/usr/sbin/sshd"
    return None


@contextlib.contextmanager
def ssh_server(home: Path) -> Iterator[str]:
    """A private sshd on a free loopback port, its keys and config in `home`; yields the
    DBDICT_SSH_COMMAND that reaches it. ServiceUnavailable if no sshd can run here."""
    from tests.conftest import free_port, wait_until

    sshd = _find_or_install_sshd()
    if sshd is None or not shutil.which("ssh-keygen"):
        raise ServiceUnavailable(
            "no ssh server available: openssh-server is not installed and cannot be"
        )
    for key in ("host_key", "client_key"):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)], check=True
        )
    shutil.copy(home / "client_key.pub", home / "authorized_keys")
    port = free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    server = subprocess.Popen(
        [sshd, "-D", "-e", "-f", str(home / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    command = (
        f"ssh -p {port} -i {home / 'client_key'} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    )

    def answers() -> bool:
        if server.poll() is not None:
            detail = server.stderr.read() if server.stderr else ""
            raise ServiceUnavailable(f"sshd could not start: {detail}")
        probe = [*command.split(), "-o", "BatchMode=yes", "127.0.0.1", "true"]
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0

    try:
        wait_until(answers, "the test sshd to accept logins", timeout=30)
        yield command
    finally:
        server.terminate()
        server.wait(timeout=10)
