"""What a worker checks and says when it starts: its settings, its experiments' code, and the
job database it serves.

A worker reads every job from its own `DBDICT_DB`. One started without it
serves the embedded SQLite database of its machine, which no other machine
can see: said loudly at start, not discovered later from jobs that wait forever.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery.signals import worker_init, worker_ready

from dbdict_celery.config import (
    PROCESS,
    default_exproot,
    gpus,
    grace_period,
    heartbeat_interval,
    isolation,
    mask,
    max_attempts,
    max_state_bytes,
    stop_signals,
    table_path,
)
from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.worker.app import app, is_embedded
from dbdict_celery.worker.leftovers import clear_leftovers

log = logging.getLogger(__name__)


@worker_init.connect
def _check_settings(sender: Any = None, **_: Any) -> None:
    """Find experiments where the worker was started, as `dbdict worker` (`python -m
    celery`) does: the `celery` script alone does not put its working directory on the
    path. Then refuse to start, rather than fail at each job or at shutdown, on a malformed
    setting (SystemExit: Celery logs and ignores the other exceptions of signal handlers).
    Last, clear what dead runs left on this machine (`leftovers.py`)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        checks = (
            grace_period, max_attempts, heartbeat_interval, max_state_bytes, isolation,
            stop_signals, gpus,
        )  # fmt: skip
        for check in checks:
            check()
        table_path()
        Remote.parse(default_exproot())
        if gpus() and not _own_processes(sender):
            raise UsageError(
                "DBDICT_GPUS needs each job in a process of its own: the prefork pool (not "
                "-P threads, solo or gevent) and DBDICT_ISOLATION=process"
            )
    except DbdictError as error:
        log.critical("dbdict: this worker cannot start: %s", error)
        raise SystemExit(1) from None
    clear_leftovers()


def _own_processes(worker: Any) -> bool:
    """Whether `worker` runs each job in a pool process of its own, its experiment in a
    process of its own again: the prefork pool, and DBDICT_ISOLATION=process."""
    pool = getattr(worker, "pool_cls", None)
    prefork = pool is None or "prefork" in f"{getattr(pool, '__module__', '')}.{pool}"
    return prefork and isolation() == PROCESS


@worker_ready.connect
def _announce_database(**_: Any) -> None:
    database = mask(table_path().url)
    if os.environ.get("DBDICT_DB"):
        log.info("dbdict: this worker runs jobs of the database %s (DBDICT_DB)", database)
        return
    if is_embedded(app):
        log.info("dbdict: this worker runs jobs of the embedded database %s", database)
        return
    log.warning(
        "dbdict: DBDICT_DB is not set: this worker runs jobs of the embedded database %s, "
        "which no other machine can see. Jobs scheduled elsewhere stay START until a worker "
        "with their DBDICT_DB takes them; set DBDICT_DB=postgresql://... here.",
        database,
    )
