"""A worker stopped the way terminals and service managers stop it, by a SIGTERM to its whole
process group (Ctrl-C, `timeout`, systemd stopping its control group), exits: its idle pool
processes die with it, and the worker must not then wait forever for a lock one of them held
(on the embedded broker billiard's blocking pool shares one task queue under one lock)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from tests.conftest import wait_until
from tests.deployments import embedded, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

WORKERS = 4  # the hang needed a pool process to die just after taking the lock: a race


def test_workers_whose_process_group_gets_sigterm_all_exit(tmp_path: Path) -> None:
    deployments = [embedded(tmp_path / f"d{n}") for n in range(WORKERS)]
    for deployment in deployments:
        deployment.cwd.mkdir(parents=True)
    try:
        for deployment in deployments:
            scheduled(deployment, "tests.experiments.quiet", "seconds=0", "n=range(2)")
        workers = [deployment.start_worker("-c", "3") for deployment in deployments]
        for deployment in deployments:
            wait_for_statuses(deployment.store(), Status.DONE)
        for worker in workers:
            os.killpg(worker.process.pid, signal.SIGTERM)
        wait_until(lambda: all(w.process.poll() is not None for w in workers),
                   "every worker to exit after its group's SIGTERM", timeout=90)  # fmt: skip
        for worker in workers:
            assert worker.process.returncode == 0, worker.text()
    finally:
        for deployment in deployments:
            deployment.close()
