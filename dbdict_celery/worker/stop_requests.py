"""Stop requests that reach the worker's main process, passed on to the running jobs.

- A revoke of a `run_job` task: Celery's main process SIGTERMs the child (with
  terminate=True) and then fires `task_revoked`. Here the row is told a
  cancel was asked (or cancelled outright if it is still START), so the run
  ends CANCELLED with its state saved, whichever of the two gets there first.
- A warm shutdown (SIGTERM to the main process, e.g. a Slurm preemption or
  `systemctl stop`): Celery waits for running tasks without telling them.
  Here each child running a job gets SIGTERM, so its experiment sees
  `switch() == 'stop'`, saves and returns; a job still running after the
  grace period (`DBDICT_GRACE`) is killed by its supervisor (`supervisor.py`),
  put back to START from its last save and sent again. Meanwhile the pool may
  still be handed messages (the ones those jobs just sent among them): a shared
  flag, set before the children are signalled, tells them to hand such messages
  back unrun.
- Any other signal DBDICT_STOP_SIGNALS names (USR2, which Slurm sends ahead of a time
  limit) is a SIGTERM to the worker's main process: the same warm shutdown. Its pool
  processes ignore it between jobs and take it as a stop request during one, so a
  scheduler that signals every process of the job never kills a pool process.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from celery.signals import task_revoked, worker_process_init, worker_ready, worker_shutting_down
from celery.worker import state

from dbdict_celery.config import PROCESS, grace_period, isolation
from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import ALWAYS, StopFlag, handled_signals
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import RESTART_PRIORITY
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.enqueue import RUN_JOB, Ring, enqueue

log = logging.getLogger(__name__)

# Created in the worker's main process before its pool forks: shared with every child.
_shutting_down = multiprocessing.RawValue(ctypes.c_bool, False)
# The pipe that wakes the grace thread: a write to it is the one thing, besides flags and
# signals, the shutdown handler does (a threading.Event would take a lock in a signal handler).
_wakeup: list[int] = []
SUPERVISOR_MARGIN = 10.0  # seconds the supervisors get, past the grace period, to kill


def shutting_down() -> bool:
    """Whether this worker is in a warm shutdown (true in its pool children too)."""
    return bool(_shutting_down.value)


class WorkerStopFlag(StopFlag):
    """A run's stop flag in a pool child: a SIGTERM during a warm shutdown is recorded as the
    worker's shutdown (the main process sets the shared flag before it signals the child)."""

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if signum == signal.SIGTERM and shutting_down():
            self.set(StopReason.SHUTDOWN)
        else:
            super()._on_signal(signum, frame)


@task_revoked.connect
def _cancel_revoked_job(
    sender: Any = None, request: Any = None, expired: bool = False, **_: Any
) -> None:
    if expired or getattr(sender, "name", None) != RUN_JOB or request is None:
        return
    table, job_id = request.args
    try:
        store = JobStore.open(None, table, create=False)
        cancellation = store.cancel([job_id], task_id=request.id)
    except DbdictError as error:
        log.error("task %s (job %s) was revoked, but its row was not changed: %s",
                  request.id, job_id, error)  # fmt: skip
        return
    if cancellation.cancelled or cancellation.stopping:
        log.info("task %s was revoked: job %s is cancelled", request.id, job_id)
    try:
        store.note_revoke(job_id, request.id)
    except DbdictError as error:
        log.warning("job %s: its attempt does not say it was revoked: %s", job_id, error)


def _scheduler_signals() -> list[signal.Signals]:
    """The stop signals DBDICT_STOP_SIGNALS adds to SIGTERM and SIGINT."""
    return [signum for signum in handled_signals() if signum not in ALWAYS]


@worker_ready.connect
def _take_scheduler_signals(**_: Any) -> None:
    """In the worker's main process, once Celery has its own handlers: each added stop
    signal starts the warm shutdown a SIGTERM starts."""
    for signum in _scheduler_signals():
        signal.signal(signum, lambda *_: os.kill(os.getpid(), signal.SIGTERM))


@worker_process_init.connect
def _ignore_scheduler_signals(**_: Any) -> None:
    """In a pool process: outside a job the added stop signals are ignored (the main process
    decides); during one they ask it to stop (`stop_signals`)."""
    for signum in _scheduler_signals():
        signal.signal(signum, signal.SIG_IGN)


@worker_ready.connect
def _watch_for_shutdown(**_: Any) -> None:
    """Start, ahead of time, the thread that enforces the grace period: the shutdown signal
    handler must only flip flags (starting a thread there takes locks)."""
    read_end, write_end = os.pipe()
    _wakeup[:] = [write_end]
    threading.Thread(
        target=_kill_after_grace, args=(read_end,), name="dbdict-grace", daemon=True
    ).start()


@worker_shutting_down.connect
def _stop_running_jobs(how: str = "", **_: Any) -> None:
    """Runs in the main process's signal handler: flags and signals, nothing that blocks."""
    if how != "Warm":
        return
    _shutting_down.value = True
    for pid, _request in _running_children():
        _signal(pid, signal.SIGTERM)
    for write_end in _wakeup:
        os.write(write_end, b"\0")  # takes no lock: wakes the grace thread


def _running_children() -> list[tuple[int, Any]]:
    """(child pid, request) of every job running in a pool child of this worker."""
    return [
        (request.worker_pid, request)
        for request in list(state.active_requests)
        if request.name == RUN_JOB and request.worker_pid not in (None, os.getpid())
    ]


def _kill_after_grace(wakeup: int) -> None:
    os.read(wakeup, 1)  # until the shutdown handler writes
    grace = grace_period()
    # with isolation each job's supervisor kills its experiment at the grace period and
    # records it: this is the backstop for a supervisor that cannot (its database hangs)
    time.sleep(grace + (SUPERVISOR_MARGIN if isolation() == PROCESS else 0.0))
    for pid, request in _running_children():
        table, job_id = request.args
        log.warning("job %s did not stop within %.0f s: killing it", job_id, grace)
        try:  # before the kill: once the child is gone, the worker may exit at once
            store = JobStore.open(None, table, create=False)
            released = store.release(job_id, request.id, RESTART_PRIORITY, StopReason.KILLED)
            if released is Status.START:
                queue = (request.delivery_info or {}).get("routing_key")  # where it came from
                enqueue(store, [Ring(job_id, RESTART_PRIORITY, queue)], record=False)
        except DbdictError as error:
            log.error("job %s could not be put back: %s", job_id, error)
        _signal(pid, signal.SIGKILL)


def _signal(pid: int, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, signum)
