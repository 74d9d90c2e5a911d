"""The cluster suite's set-up: worker hosts, a file server and the shared servers, on a
network of namespaces (`network.py`).

- Three worker hosts (`node1`..`node3`), each a network namespace with its own
  hostname, working-directory root (TMPDIR) and DBDICT_HOME, running
  `celery -A dbdict_celery worker`.
- A fourth namespace, `files`, where an sshd of the test's own (its keys made
  here) serves the exproot: the workers reach it as `ssh://ADDRESS:/path`.
- A private PostgreSQL and Redis in this namespace, listening on the bridge's
  address, which the hosts reach over their links; with the `pgbouncer`
  parameter, the hosts (and the head node's commands) reach Postgres through
  a PgBouncer in transaction mode with fewer server sessions than clients.
- This process is the head node: it schedules, runs reconcile and reads the
  table, as a user's login node would.

Skipped, saying why, where namespaces cannot be made (not root, no iproute2).
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from tests.chaos.conftest import Chaos, chaos_on
from tests.cluster.network import Host, Network, NetworkUnavailable, network
from tests.deployments import Deployment, Worker
from tests.services import PgBouncer, PostgresServer, RedisServer, ServiceUnavailable, ssh_server
from tests.services import pgbouncer as start_pgbouncer

WORKER_HOSTS = ("node1", "node2", "node3")
DATABASE = "cluster"
TABLE = "sweep"
POOL_SIZE = 4  # PgBouncer's server sessions: fewer than the hosts' pool processes
SAMPLE_EVERY = 0.2  # seconds between two counts of the server's sessions
STALE_AFTER = 12.0  # seconds: an ssh login on a loaded host fits in the quarter of it rsync waits


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/cluster/" in item.nodeid:
            item.add_marker(pytest.mark.cluster)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.timeout(900))


@dataclass
class Sessions:
    """The most Postgres sessions seen at once, by where they came from (a host's address,
    or loopback for PgBouncer's), counted every SAMPLE_EVERY seconds by a thread."""

    url: str
    most: Counter[str] = field(default_factory=Counter)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        threading.Thread(target=self._count, name="session-count", daemon=True).start()

    def _count(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            while not self._stop.wait(SAMPLE_EVERY):
                rows = connection.execute(
                    "SELECT host(client_addr), count(*) FROM pg_stat_activity "
                    "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() "
                    "AND client_addr IS NOT NULL GROUP BY 1"
                ).fetchall()
                for address, count in rows:
                    self.most[address] = max(self.most[address], count)

    def stop(self) -> None:
        self._stop.set()


@dataclass
class Cluster:
    """The hosts, the servers, and the chaos (schedule, break, judge) played on them."""

    network: Network
    hosts: dict[str, Host]
    files: Host  # the exproot's host
    chaos: Chaos
    sessions: Sessions
    bouncer: PgBouncer | None
    workers: dict[str, Worker] = field(default_factory=dict)

    @property
    def deployment(self) -> Deployment:
        return self.chaos.deployment

    def start_worker(self, name: str, *options: str) -> Worker:
        """`celery -A dbdict_celery worker` on host `name`, with its own directories."""
        own = self.deployment.cwd / "hosts" / name
        for folder in ("work", "home"):
            (own / folder).mkdir(parents=True, exist_ok=True)
        worker = self.deployment.start_worker(
            *options, on=self.hosts[name].command, TMPDIR=str(own / "work"),
            DBDICT_HOME=str(own / "home"),
        )  # fmt: skip
        self.workers[name] = worker
        return worker


@pytest.fixture(params=["direct", "pgbouncer"])
def cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Cluster]:
    """Three worker hosts, the exproot's host and the servers, made for one test."""
    with contextlib.ExitStack() as stack:
        net = stack.enter_context(network())
        try:
            hosts = {name: net.add_host(name) for name in WORKER_HOSTS}
            files = net.add_host("files")
        except NetworkUnavailable as error:
            pytest.skip(f"no test hosts on this machine: {error}")
        gateway = net.gateway
        postgres = PostgresServer(also_on=[gateway])
        stack.callback(postgres.remove)
        postgres.start()
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE {DATABASE}")
        password = uuid.uuid4().hex  # off loopback, Redis wants one
        redis = RedisServer(tmp_path, password=password, also_on=[gateway])
        redis.start()
        stack.callback(redis.stop)
        exproot = tmp_path / "exproot"
        exproot.mkdir()
        ssh_home = tmp_path / "sshd"
        ssh_home.mkdir()
        try:
            ssh = stack.enter_context(ssh_server(ssh_home, files.address, 22, files.inside))
        except ServiceUnavailable as error:
            pytest.skip(str(error))
        database = f"{postgres.url_at(gateway).rpartition('/')[0]}/{DATABASE}"
        bouncer = None
        env = {"DBDICT_DB": f"{database}/{TABLE}"}
        if request.param == "pgbouncer":
            try:
                bouncer = stack.enter_context(
                    start_pgbouncer(postgres.url, POOL_SIZE, idle_transaction=3, address=gateway)
                )
            except ServiceUnavailable as error:
                pytest.skip(str(error))
            env = {"DBDICT_DB": f"{bouncer.url(DATABASE)}/{TABLE}", "DBDICT_POOLER": "transaction"}
        env.update(DBDICT_BROKER=redis.url_at(gateway), DBDICT_HEARTBEAT="1",
                   DBDICT_EXPROOT=f"ssh://{files.address}:{exproot}",
                   DBDICT_SSH_COMMAND=ssh, DBDICT_HOME=str(tmp_path / "head"))  # fmt: skip
        deployment = Deployment(f"cluster-{request.param}", f"{database}/{TABLE}", env, exproot,
                                tmp_path)  # fmt: skip
        chaos = stack.enter_context(contextlib.contextmanager(chaos_on)(deployment, request))
        deployment.env["DBDICT_STALE_AFTER"] = str(STALE_AFTER)
        sessions = Sessions(postgres.url)
        sessions.start()
        stack.callback(sessions.stop)
        yield Cluster(net, hosts, files, chaos, sessions, bouncer)
