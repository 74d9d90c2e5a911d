"""`dbdict status` names the queues whose START jobs no worker takes: RabbitMQ counts each
queue's consumers, Redis's live workers are asked, and where nobody can tell, status says so
without waiting long."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import free_port, wait_until
from tests.deployments import Deployment, embedded, scheduled

pytestmark = pytest.mark.integration

QUIET = "tests.experiments.quiet"


def _consumers(deployment: Deployment) -> dict[str, Any]:
    """What `dbdict status --json` says of the START jobs' queues."""
    done = deployment.dbdict("status", "--json", timeout=60)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)["consumers"]
    return found


def _counted(deployment: Deployment) -> dict[str, Any] | None:
    """What `dbdict status --json` says of the queues, if it could count their consumers."""
    found = _consumers(deployment)
    return found if found["counts"] is not None else None


def _shown(deployment: Deployment) -> str | None:
    """What `dbdict status` prints, if it could count the consumers."""
    done = deployment.dbdict("status", timeout=60)
    assert done.returncode == 0, done.stderr
    return None if "no worker answered" in done.stdout else done.stdout


def test_status_names_the_queue_no_worker_consumes(any_broker: Deployment) -> None:
    scheduled(any_broker, "--queue", "gpu", QUIET, "seconds=600", "n=range(2)")
    scheduled(any_broker, QUIET, "seconds=600", "n=range(2, 4)")
    scheduled(any_broker, "--no-enqueue", "--queue", "cpu", QUIET, "seconds=600", "n=4")
    any_broker.start_worker("-c", "1")  # the default queue only: one job runs, one waits
    store = any_broker.store()
    wait_until(lambda: store.counts()[Status.RUNNING] == 1, "a job of the default queue to run")
    # a worker too busy to answer within status's short wait is missed: then ask again
    found = wait_until(lambda: _counted(any_broker), "the consumers to be counted", timeout=60)
    assert found["queues"] == ["cpu", "dbdict", "gpu"]
    assert found["waiting"] == {"cpu": 1, "dbdict": 1, "gpu": 2}
    assert found["counts"] == {"cpu": 0, "dbdict": 1, "gpu": 0}, found["how"]
    shown = wait_until(lambda: _shown(any_broker), "status to count the consumers", timeout=60)
    assert "no worker consumes gpu" in shown
    assert "no worker consumes dbdict" not in shown


def test_status_says_when_no_worker_answers_and_does_not_wait_for_one(
    cluster: Deployment,
) -> None:
    scheduled(cluster, "--queue", "gpu", QUIET, "seconds=1")
    started = time.monotonic()
    found = _consumers(cluster)
    assert time.monotonic() - started < 15, "a short wait for answers that never come"
    assert (found["queues"], found["counts"]) == (["gpu"], None)
    assert "no worker answered" in found["how"]


def test_status_with_a_broker_down_still_shows_the_table(cluster: Deployment) -> None:
    scheduled(cluster, QUIET, "seconds=1")
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    found = _consumers(dataclasses.replace(cluster, env={**cluster.env, "DBDICT_BROKER": down}))
    assert found["counts"] is None
    assert "cannot reach the broker" in found["how"]


def test_status_on_the_embedded_broker_says_it_cannot_tell(tmp_path: Path) -> None:
    laptop = embedded(tmp_path)
    scheduled(laptop, QUIET, "seconds=1")
    found = _consumers(laptop)
    assert (found["queues"], found["counts"]) == (["dbdict"], None)
    assert "embedded broker cannot tell" in found["how"]
