"""The security posture (docs/security.md), checked where a test can check it."""

from __future__ import annotations

import base64
import json
import re
import secrets
from pathlib import Path

import pytest
import redis
import yaml
from celery import Celery
from celery.worker import WorkController

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment import sync
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE
from dbdict_celery.worker.enqueue import RUN_JOB
from tests.conftest import REPO, dbdict, wait_until
from tests.deployments import (
    Deployment,
    broker_of,
    postgres_redis,
    redis_messages_waiting,
    scheduled,
    wait_for_statuses,
)
from tests.services import RedisServer

pytestmark = pytest.mark.integration

SHELL_BAIT = "dir with spaces; touch pwned-semicolon $(touch pwned-dollar) `touch pwned-tick`"
DB_SECRET = f"pg-{secrets.token_hex(8)}"
BROKER_SECRET = f"redis-{secrets.token_hex(8)}"


def test_a_pickle_message_is_refused_and_runs_nothing(
    cluster: Deployment, celery_app: Celery, celery_worker: WorkController
) -> None:
    marks = cluster.cwd / "marks"
    first, second = scheduled(cluster, "tests.experiments.mark", "n=range(2)",
                              f"marks='{marks}'", "--no-enqueue")  # fmt: skip
    table = cluster.store().path.table
    celery_app.send_task(RUN_JOB, args=(table, first.id), queue=QUEUE, serializer="pickle")
    celery_app.send_task(RUN_JOB, args=(table, second.id), queue=QUEUE)  # behind it in line
    store = cluster.store()
    wait_until(lambda: store.get(second.id).status is Status.DONE, "the JSON message to run")
    wait_until(lambda: redis_messages_waiting(broker_of(cluster)) == 0, "the queue to empty")
    assert store.get(first.id).status is Status.START, "the pickled message ran nothing"
    assert marks.read_text().splitlines() == ["1"]


def test_an_exproot_with_shell_characters_is_used_literally(
    cluster: Deployment,
    celery_app: Celery,
    celery_worker: WorkController,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    exproot = cluster.cwd / SHELL_BAIT
    monkeypatch.setenv("DBDICT_EXPROOT", str(exproot))
    cluster.env["DBDICT_EXPROOT"] = str(exproot)
    (job,) = scheduled(cluster, "tests.experiments.write_files")
    store = cluster.store()
    wait_for_statuses(store, Status.DONE)
    path = store.path
    assert (exproot / path.dbname / path.table / str(job.id) / "artifact.txt").exists()
    assert not _pwned(cluster.cwd, Path.cwd(), REPO)


def test_a_workdir_with_shell_characters_is_used_literally(tmp_path: Path) -> None:
    workdir = tmp_path / SHELL_BAIT
    done = dbdict("run", "-w", str(workdir), "tests.experiments.write_files", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (workdir / "artifact.txt").read_text() == "run 1\n"
    assert not _pwned(tmp_path, REPO)


@pytest.mark.ssh
def test_an_ssh_exproot_with_shell_characters_is_used_literally(
    ssh_command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over ssh the path passes through the remote shell: it is quoted, so still literal."""
    monkeypatch.setenv("DBDICT_SSH_COMMAND", ssh_command)
    local = tmp_path / "local"
    local.mkdir()
    (local / "model.txt").write_text("weights")
    remote = sync.Remote.parse(f"ssh://127.0.0.1:{tmp_path / SHELL_BAIT}")
    sync.ensure_dir(remote)
    sync.push(str(local), remote)
    assert (tmp_path / SHELL_BAIT / "model.txt").read_text() == "weights"
    assert not _pwned(tmp_path, Path.home())


def _pwned(*places: Path) -> list[Path]:
    return [found for place in places for found in place.glob("**/pwned-*")]


def test_filter_values_and_keys_are_bound_never_spliced_into_sql(store: JobStore) -> None:
    bait = "x' OR '1'='1"
    list(store.insert([NewJob("e.f", {"name": bait}), NewJob("e.f", {"name": "plain"})]))
    assert [job.params["name"] for job in store.jobs(where=[f"name={bait}"])] == [bait]
    assert store.jobs(where=["name=x' OR 1=1 --"]) == []
    with pytest.raises(UsageError, match="malformed filter"):  # a key is a plain dotted name
        store.jobs(where=['name"); DROP TABLE jobs; --=1'])
    assert len(store.jobs()) == 2, "the table is intact"


FLOWER = re.compile(r"\bflower\b")


def test_every_flower_in_the_docs_and_deploy_files_asks_for_a_password() -> None:
    """Flower shows every task's arguments and can revoke them: never open to all."""
    places = [REPO / "README.md", *(REPO / "docs").glob("**/*.md")]
    places += [
        path
        for path in (REPO / "deploy").glob("**/*")
        if path.is_file() and path.suffix != ".yaml"  # compose: its services, just below
    ]
    commands = [
        (path, command)
        for path in places
        for command in _commands(path.read_text(encoding="utf-8"))
        if FLOWER.search(command) and "pip install" not in command
    ]
    assert commands, "the docs show how to start Flower"
    for path, command in commands:
        assert re.search(r"--basic-auth|FLOWER_BASIC_AUTH|--auth", command), (
            f"{path.relative_to(REPO)}: Flower without a password: {command}"
        )
    services = yaml.safe_load((REPO / "deploy" / "compose.yaml").read_text())["services"]
    flowers = [service for service in services.values() if "flower" in service.get("command", [])]
    assert flowers, "compose.yaml runs Flower"
    for service in flowers:
        assert "FLOWER_BASIC_AUTH" in service["environment"], "compose's Flower asks too"


def _commands(text: str) -> list[str]:
    """Lines of a text with their backslash continuations joined."""
    return text.replace("\\\n", " ").splitlines()


def test_no_secret_in_the_message_the_row_the_logs_or_the_files(
    tmp_path: Path, postgres_location: str
) -> None:
    directory = tmp_path / "redis"
    directory.mkdir()
    broker = RedisServer(directory, password=BROKER_SECRET)
    broker.start()
    deployment = postgres_redis(
        tmp_path, postgres_location.replace("root@", f"root:{DB_SECRET}@", 1), broker.url
    )
    try:
        said = [deployment.dbdict("schedule", "tests.experiments.noisy", "n=range(2)"),
                deployment.dbdict("schedule", "tests.experiments.fail")]  # fmt: skip
        messages = _queued_messages(broker.url)
        assert len(messages) == 3
        worker = deployment.start_worker("-c", "1")
        store = deployment.store()
        wait_for_statuses(store, Status.DONE, Status.FAILED)
        said += [deployment.dbdict(*command) for command in (["status"], ["list"], ["show", "3"],
                 ["logs", "3"], ["reconcile"], ["export", "-"])]  # fmt: skip
        seen = {
            "the messages": "\n".join(messages),
            "the rows": "\n".join(repr(job) for job in store.jobs()),
            "the worker log": worker.text(),
            "the commands' output": "\n".join(done.stdout + done.stderr for done in said),
        }
        for path in tmp_path.glob("**/*"):
            if path.is_file() and directory not in path.parents:
                seen[str(path)] = path.read_text(encoding="utf-8", errors="replace")
        for secret in (DB_SECRET, BROKER_SECRET):
            leaks = [where for where, text in seen.items() if secret in text]
            assert not leaks, f"{secret} shows in {leaks}"
        assert "***" in worker.text(), "the worker names its database, with the password masked"
    finally:
        deployment.close()
        broker.stop()


def _queued_messages(url: str) -> list[str]:
    """Each message waiting in the dbdict queue, its body decoded."""
    client = redis.Redis.from_url(url)
    messages = []
    for key in client.scan_iter(match=f"{QUEUE}*"):
        if client.type(key) == b"list":
            for raw in client.lrange(key, 0, -1):
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                body = base64.b64decode(json.loads(text)["body"]).decode("utf-8")
                messages.append(f"{text}\n{body}")
    return messages
