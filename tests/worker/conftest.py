"""An in-process worker for the tests that need no signals, with pytest-celery's fixtures.

`celery_worker` (from `celery.contrib.pytest`, which pytest-celery enables)
runs a worker thread on `celery_app`; here that app is dbdict's own, pointed
at the test's cluster, so the real `run_job` runs against the real Postgres
and Redis in milliseconds of start-up. Whatever needs SIGTERM, a revoke with
terminate or a pool to kill still uses `celery worker` subprocesses.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from celery.signals import task_postrun

from dbdict_celery.worker.app import app
from tests.conftest import app_on_broker
from tests.deployments import Deployment, broker_of


@pytest.fixture
def celery_app(cluster: Deployment, monkeypatch: pytest.MonkeyPatch) -> Iterator[Celery]:
    """dbdict's app on the cluster's broker; its tasks see the cluster's settings."""
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    with app_on_broker(broker_of(cluster)):
        yield app


@pytest.fixture
def task_outcomes() -> Iterator[list[Any]]:
    """What each task the in-process worker ran returned, in order. Connected before the
    worker starts: a worker reads the signal's receivers once, when it builds its tasks."""
    outcomes: list[Any] = []

    def record(retval: Any, **_: Any) -> None:
        outcomes.append(retval)

    task_postrun.connect(record, weak=False)
    yield outcomes
    task_postrun.disconnect(record)


@pytest.fixture
def celery_worker_parameters(task_outcomes: list[Any]) -> dict[str, Any]:
    """No ping check: dbdict ignores task results, so there is no backend to answer it."""
    return {"perform_ping_check": False}
