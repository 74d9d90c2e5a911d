"""The Celery app's settings: the ones the job table's guarantees depend on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dbdict_celery.store.job import DEFAULT_PRIORITY, RESTART_PRIORITY
from dbdict_celery.worker.app import broker_priority, create_app, is_embedded
from dbdict_celery.worker.kombu_internals import POLLING_INTERVAL
from tests.conftest import REPO


def test_higher_row_priorities_run_first_on_redis_and_rabbitmq() -> None:
    rows = [-1.0, 0.0, 0.5, DEFAULT_PRIORITY, 1.5, RESTART_PRIORITY, 3.0, 100.0]
    rabbit = [broker_priority(p, "amqp") for p in rows]
    redis = [broker_priority(p, "redis") for p in rows]
    assert rabbit == sorted(rabbit), "RabbitMQ: a higher number is more urgent"
    assert redis == sorted(redis, reverse=True), "Redis: 0 is the most urgent"
    assert all(0 <= level <= 9 for level in rabbit + redis)
    assert broker_priority(RESTART_PRIORITY, "amqp") > broker_priority(DEFAULT_PRIORITY, "amqp")
    assert broker_priority(RESTART_PRIORITY, "redis") < broker_priority(DEFAULT_PRIORITY, "redis")


def test_the_settings_the_guarantees_depend_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBDICT_BROKER", "redis://broker.invalid:6379/0")  # never contacted
    conf = create_app().conf
    assert conf.accept_content == ["json"]
    assert (conf.task_serializer, conf.result_serializer) == ("json", "json")
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    options = conf.broker_transport_options
    assert options["priority_steps"] == list(range(10))
    assert options["queue_order_strategy"] == "priority"
    assert options["visibility_timeout"] >= 12 * 3600


def test_the_default_broker_is_embedded_in_dbdict_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("DBDICT_BROKER", raising=False)
    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setenv("DBDICT_HOME", str(tmp_path / "fresh"))
    app = create_app()
    assert app.conf.broker_url == f"sqlite:///{tmp_path}/fresh/broker.db"
    assert is_embedded(app)
    assert (tmp_path / "fresh").is_dir()
    assert "visibility_timeout" not in app.conf.broker_transport_options
    with app.connection_for_write() as connection:  # an empty queue is looked at again soon
        assert connection.transport.polling_interval == POLLING_INTERVAL  # type: ignore[attr-defined]


def test_celery_finds_the_app_as_dbdict_celery_app(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "dbdict_celery", "inspect", "--help"],
        cwd=tmp_path,
        env={"PYTHONPATH": str(REPO), "DBDICT_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    import dbdict_celery

    assert dbdict_celery.app.main == "dbdict_celery"
    assert "dbdict_celery.run_job" in dbdict_celery.app.tasks


def test_the_task_names_users_write_are_the_registered_ones() -> None:
    """Beat schedules and Flower name tasks by these strings: moving code never changes them."""
    import re

    import dbdict_celery
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(dbdict_celery\.\w+)` task", readme))
    assert named == {"dbdict_celery.reconcile", "dbdict_celery.drive_studies"}
    dbdict_celery.app.loader.import_default_modules()  # the modules a worker imports at start
    registered = set(dbdict_celery.app.tasks)
    assert named | {"dbdict_celery.run_job"} <= registered
    scheduled = {entry["task"] for entry in dbdict_celery.app.conf.beat_schedule.values()}
    assert scheduled == named, "beat's schedule names the registered tasks the README names"
