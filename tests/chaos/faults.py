"""The faults the chaos tests play on a cluster, and where to find a running job to hit."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.deployments import Worker
from tests.services import AMQP_SERVER


def pool_children(worker: Worker) -> set[int]:
    """The pids of a worker's pool processes (its main process's children)."""
    pid = worker.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return {int(child) for child in children.split()}
    except FileNotFoundError:
        return set()


def running_job_in(
    store: JobStore, spare: set[int], pids: set[int] | None = None
) -> tuple[int, int] | None:
    """A RUNNING job not in `spare`, run by one of `pids` (default: any): (job id, pid)."""
    candidates = [
        (job.id, job.pid)
        for job in store.jobs(Status.RUNNING)
        if job.pid is not None and (pids is None or job.pid in pids) and job.id not in spare
    ]
    return random.choice(candidates) if candidates else None  # noqa: S311


def kill(pid: int, signum: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


def restart_rabbitmq() -> None:
    """Stop and start the RabbitMQ application of the test server: every connection drops,
    durable queues and persistent messages come back from disk."""
    if urlsplit(AMQP_SERVER).hostname not in {"127.0.0.1", "localhost", "::1"}:
        pytest.skip(f"RabbitMQ is restarted with rabbitmqctl: {AMQP_SERVER} is not on this machine")
    rabbitmqctl = shutil.which("rabbitmqctl")
    assert rabbitmqctl is not None, "rabbitmqctl is needed to restart RabbitMQ"
    for action in ("stop_app", "start_app", "await_startup"):
        done = subprocess.run([rabbitmqctl, "-q", action], capture_output=True, text=True,
                              timeout=300, check=False)  # fmt: skip
        assert done.returncode == 0, f"rabbitmqctl {action}: {done.stderr or done.stdout}"
