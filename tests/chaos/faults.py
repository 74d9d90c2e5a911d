"""The faults the chaos tests play on a cluster, and where to find a running job to hit."""

from __future__ import annotations

import contextlib
import os
import random
import signal
from pathlib import Path

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.deployments import Worker


def pool_children(worker: Worker) -> set[int]:
    """The pids of a worker's pool processes (its main process's children)."""
    pid = worker.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return {int(child) for child in children.split()}
    except FileNotFoundError:
        return set()


def running_job_in(store: JobStore, pids: set[int], spare: set[int]) -> tuple[int, int] | None:
    """A RUNNING job whose run is in one of `pids` and not in `spare`: (job id, pid)."""
    candidates = [
        (job.id, job.pid)
        for job in store.jobs(Status.RUNNING)
        if job.pid in pids and job.id not in spare
    ]
    return random.choice(candidates) if candidates else None  # noqa: S311


def kill(pid: int, signum: signal.Signals = signal.SIGKILL) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
