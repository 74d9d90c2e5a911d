"""Flower, started as `celery -A dbdict_celery flower`, shows the tasks dbdict sent: the
workers' task events are off until Flower turns them on."""

from __future__ import annotations

import base64
import contextlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import free_port, wait_until
from tests.deployments import (
    CELERY,
    Deployment,
    environment,
    scheduled,
    wait_for_statuses,
)

pytestmark = pytest.mark.integration

AUTH = "researcher:s3cret"


def _get(port: int, path: str, auth: str | None = AUTH) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}")
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 (loopback)
            body = answer.read()
            return answer.status, json.loads(body) if path.startswith("/api/") else body
    except urllib.error.HTTPError as error:
        return error.code, None
    except (urllib.error.URLError, ConnectionError):
        return 0, None


@contextlib.contextmanager
def flower(cluster: Deployment) -> Iterator[int]:
    """`celery -A dbdict_celery flower` with a password, answering; its port. Stopped after."""
    port = free_port()
    process = subprocess.Popen(
        [
            *(CELERY, "-A", "dbdict_celery", "flower"),
            *("--address=127.0.0.1", f"--port={port}", f"--basic-auth={AUTH}"),
        ],
        cwd=cluster.cwd,
        env=environment(cluster.env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _get(port, "/healthcheck", None)[0] == 200, "Flower to answer", 60)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_flowers_api_lists_a_run_job_task_with_its_table_and_id(cluster: Deployment) -> None:
    with flower(cluster) as port:
        assert _get(port, "/api/tasks", None)[0] == 401, "basic auth is required"
        cluster.start_worker("-c", "1")
        store = cluster.store()
        sent: list[int] = []

        def listed() -> Any:
            """Flower turns the worker's task events on within seconds of seeing it: until
            then a job runs unseen, so one more is scheduled at each look."""
            scheduled(cluster, "examples.count.experiment", f"target={2 + len(sent)}")
            sent.append(len(sent))
            wait_for_statuses(store, Status.DONE)
            status, tasks = _get(port, "/api/tasks")
            seen = tasks if status == 200 and tasks else {}
            return [
                (job, seen[job.task_id])
                for job in store.jobs()
                if job.task_id in seen and seen[job.task_id].get("received")  # seen whole
            ]

        job, task = wait_until(listed, "Flower to list a task", timeout=60)[0]
        assert task["name"] == "dbdict_celery.run_job"
        assert task["args"] == repr((store.path.table, job.id))
        assert task["state"] == "SUCCESS"
        assert task["uuid"].startswith(f"{store.path.table}-{job.id}-"), "its id names the job"


def test_a_task_started_before_flower_is_listed_under_an_id_naming_its_job(
    cluster: Deployment,
) -> None:
    """Flower learns a task's name and arguments only from the worker's `task-received`
    event: a job that started before Flower turned events on is listed with no name, and
    its id is then what says which job it is."""
    worker = cluster.start_worker("-c", "1")
    (job,) = scheduled(cluster, "tests.experiments.quiet", "seconds=600")
    store = cluster.store()
    wait_until(lambda: store.get(job.id).status is Status.RUNNING, "the job to start")
    with flower(cluster) as port:
        wait_until(lambda: "enabled by remote" in worker.text(), "Flower to turn events on", 60)
        assert cluster.dbdict("cancel", str(job.id)).returncode == 0  # the task ends now

        def listed() -> Any:
            status, tasks = _get(port, "/api/tasks")
            return status == 200 and tasks and tasks.get(store.get(job.id).task_id)

        task = wait_until(listed, "Flower to list the task that ended", timeout=60)
        assert task["name"] is None, "Flower never saw it received"
        assert task["uuid"].startswith(f"{store.path.table}-{job.id}-"), "its id names the job"
