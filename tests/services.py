"""The services the integration tests use: every address is here, and the tests only ever
touch what they make themselves, so running them on a workstation loses nobody's data.
They install nothing: `make prerequisites` (scripts/prerequisites.sh) installs the programs
they run, and a test whose program is missing fails saying so (MissingProgram).

- PostgreSQL: a database of the session's own (`dbdict_test_<random>`), created at
  the start and dropped at the end, on the server of `DBDICT_TEST_POSTGRES`
  (default `postgresql://root@127.0.0.1:5432/postgres`, used only to create and drop it).
- Redis: a private `redis-server` on a free loopback port, without persistence,
  stopped at the end (`DBDICT_TEST_REDIS_SERVER` names the binary).
- RabbitMQ: a vhost of the session's own on the server of `DBDICT_TEST_AMQP`
  (default `amqp://guest:guest@127.0.0.1:5672`), made and deleted with `rabbitmqctl`.
- ssh: a private `sshd` on a free loopback port, reached with a key made for it.
- PgBouncer: a private one in transaction mode, in front of a server above.
Servers may also listen on the test hosts' links (`tests/cluster/`).
"""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import signal
import subprocess
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

POSTGRES_SERVER = os.environ.get(
    "DBDICT_TEST_POSTGRES", "postgresql://root@127.0.0.1:5432/postgres"
)
AMQP_SERVER = os.environ.get("DBDICT_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672")
REDIS_SERVER = os.environ.get("DBDICT_TEST_REDIS_SERVER", "redis-server")


def _name() -> str:
    return f"dbdict_test_{uuid.uuid4().hex[:10]}"


class ServiceUnavailable(Exception):
    """A service this machine cannot run (the tests using it are skipped, saying why)."""


class MissingProgram(Exception):
    """A program the tests need that this machine could have but has not: the tests install
    nothing (`make prerequisites` does), and they fail rather than skip, or a missing
    package would pass unnoticed as a skip."""


def installed(program: str, package: str) -> str:
    """Where `program` is, in sbin too (not on a user's PATH); MissingProgram if nowhere."""
    for candidate in (shutil.which(program), f"/usr/sbin/{program}"):
        if candidate and os.path.exists(candidate):
            return candidate
    raise MissingProgram(
        f"{program} is not installed: `make prerequisites` installs it (Debian: {package})"
    )


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

    def __init__(
        self, directory: Path, password: str | None = None, also_on: Sequence[str] = ()
    ) -> None:
        from tests.conftest import free_port

        self.binary = installed(REDIS_SERVER, "redis-server")
        self.directory = directory
        self.port = free_port()
        self.password = password
        self.addresses = ["127.0.0.1", *also_on]  # loopback, and perhaps test hosts' links
        self.url = self.url_at("127.0.0.1")
        self.process: subprocess.Popen[bytes] | None = None

    def url_at(self, address: str) -> str:
        """The server's URL as reached at one of its addresses."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{address}:{self.port}/0"

    def start(self) -> None:
        from tests.conftest import wait_until

        auth = ["--requirepass", self.password] if self.password else []
        self.process = server = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", *self.addresses, "--save", "",
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
    rabbitmqctl = installed("rabbitmqctl", "rabbitmq-server")
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

    def __init__(self, also_on: Sequence[str] = ()) -> None:
        from tests.conftest import free_port

        self.bin = _postgres_bin()
        self.addresses = ["127.0.0.1", *also_on]  # loopback, and perhaps test hosts' links
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
        if also_on:  # trust the test hosts on the links it listens on, as it trusts loopback
            with open(self.directory / "data" / "pg_hba.conf", "a", encoding="utf-8") as hba:
                hba.write("host all all samenet trust\n")

    def url_at(self, address: str) -> str:
        """The server's URL as reached at one of its addresses."""
        return f"postgresql://root@{address}:{self.port}/postgres"

    def _as_owner(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def start(self) -> None:
        from tests.conftest import wait_until

        with open(self.directory / "server.log", "ab") as log:
            self.process = server = subprocess.Popen(
                [*self._as_owner(), str(self.bin / "postgres"), "-D", str(self.directory / "data"),
                 "-p", str(self.port), "-k", str(self.directory), "-c", "fsync=off",
                 "-c", f"listen_addresses={','.join(self.addresses)}"],
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
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))  # Debian's, not on PATH
    if found:
        return found[-1].parent
    return Path(installed("initdb", "postgresql")).parent


@contextlib.contextmanager
def ssh_server(
    home: Path, address: str = "127.0.0.1", port: int | None = None, inside: Sequence[str] = ()
) -> Iterator[str]:
    """A private sshd on `address` (default: a free loopback port), its keys and config in
    `home`, started with the command prefix `inside` (a network namespace's `ip netns
    exec`); yields the DBDICT_SSH_COMMAND that reaches it. ServiceUnavailable if sshd
    cannot run here, MissingProgram if it is not installed."""
    from tests.conftest import free_port, wait_until

    sshd = installed("sshd", "openssh-server")
    keygen = installed("ssh-keygen", "openssh-client")
    for key in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(home / key)], check=True)
    shutil.copy(home / "client_key.pub", home / "authorized_keys")
    port = port or free_port()
    (home / "sshd_config").write_text(
        f"Port {port}\nListenAddress {address}\nHostKey {home / 'host_key'}\n"
        f"AuthorizedKeysFile {home / 'authorized_keys'}\nPidFile {home / 'sshd.pid'}\n"
        "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nUsePAM no\n"
    )
    os.makedirs("/run/sshd", exist_ok=True)
    log = home / "sshd.log"  # a file, not a pipe: a pipe nobody reads fills, and sshd stops
    server = subprocess.Popen(
        [*inside, sshd, "-D", "-E", str(log), "-f", str(home / "sshd_config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    command = (
        f"ssh -p {port} -i {home / 'client_key'} -o StrictHostKeyChecking=no "
        "-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
    )

    def answers() -> bool:
        if server.poll() is not None:
            detail = log.read_text(errors="replace") if log.exists() else ""
            raise ServiceUnavailable(f"sshd could not start: {detail}")
        probe = [*command.split(), "-o", "BatchMode=yes", address, "true"]
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode == 0

    try:
        wait_until(answers, "the test sshd to accept logins", timeout=30)
        yield command
    finally:
        server.terminate()
        server.wait(timeout=10)


class PgBouncer:
    """A private PgBouncer in transaction mode in front of a Postgres server, on a free
    port of `address`: at most `pool_size` server sessions per database and user, however
    many clients. A session idling inside a transaction for `idle_transaction` seconds is
    closed, as Postgres's idle_in_transaction_session_timeout would (see docs/scaling.md).
    Run as `postgres` when root (it refuses to run as root)."""

    def __init__(self, server: str, pool_size: int, idle_transaction: float,
                 address: str = "127.0.0.1") -> None:  # fmt: skip
        from sqlalchemy import make_url

        from tests.conftest import free_port

        self.binary = installed("pgbouncer", "pgbouncer")
        self.directory = Path(tempfile.mkdtemp(prefix="dbdict-test-pgbouncer-"))
        self.port = free_port()
        self.address = address
        target = make_url(server)
        (self.directory / "userlist.txt").write_text(f'"{target.username or "root"}" ""\n')
        (self.directory / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = {address}\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'userlist.txt'}\n"
            f"admin_users = {target.username or 'root'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\n"
            f"min_pool_size = 0\nreserve_pool_size = 0\nmax_client_conn = 2000\n"
            f"idle_transaction_timeout = {idle_transaction}\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        if os.geteuid() == 0:
            shutil.chown(self.directory, "postgres", "postgres")
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, database: str) -> str:
        """The URL of `database` (on the server behind) through this pooler."""
        return f"postgresql://root@{self.address}:{self.port}/{database}"

    def start(self) -> None:
        from tests.conftest import wait_until

        owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.process = bouncer = subprocess.Popen(
            [*owner, self.binary, str(self.directory / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(lambda: self.show("VERSION") or bouncer.poll() is not None,
                   "the private pgbouncer to answer", timeout=30)  # fmt: skip
        assert bouncer.poll() is None, self.log()

    def show(self, what: str) -> list[dict[str, str]]:
        """Rows of the admin console's `SHOW what` (it speaks only the simple query protocol,
        which psql uses); [] when it does not answer."""
        done = subprocess.run(
            ["psql", "-X", "-q", "--csv", "-h", self.address, "-p", str(self.port), "-U", "root",
             "-d", "pgbouncer", "-c", f"SHOW {what}"],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            return []
        return list(csv.DictReader(done.stdout.splitlines()))

    def log(self) -> str:
        log = self.directory / "pgbouncer.log"
        return log.read_text(errors="replace") if log.exists() else "(no log)"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        shutil.rmtree(self.directory, ignore_errors=True)


@contextlib.contextmanager
def pgbouncer(
    server: str, pool_size: int, idle_transaction: float, address: str = "127.0.0.1"
) -> Iterator[PgBouncer]:
    """A private PgBouncer (see PgBouncer), running; stopped afterwards."""
    bouncer = PgBouncer(server, pool_size, idle_transaction, address)
    bouncer.start()
    try:
        yield bouncer
    finally:
        bouncer.stop()
