"""Celery's prefork pool, whose shutdown does not wait forever for a lock a dead process held.

On a broker without an event loop (the embedded SQLite broker) Celery uses billiard's
blocking pool: its idle processes take turns reading one shared queue, under one lock.
A SIGTERM sent to the worker's whole process group (Ctrl-C in a terminal, `timeout`,
systemd stopping its control group) can end an idle process just after it took that
lock, before the `with` block that would release it. When the pool is finalized,
billiard waits for that lock with no time limit, to drain the queue for its task
thread, so the worker would print "Warm shutdown" and then sleep forever.

Here the wait is bounded: a lock still held after a few seconds belongs to a process
that will never let go of it, and what is left in the queue is for processes that are
gone (the table, not the queue, holds each job: an unfinished one is put back by the
warm shutdown or, after a kill, by reconcile).
"""

from __future__ import annotations

import logging
from typing import Any

from billiard.pool import Pool as BlockingPool
from celery.concurrency.prefork import TaskPool as CeleryTaskPool

log = logging.getLogger(__name__)

LOCK_WAIT = 5.0  # seconds: a live reader holds the lock for the length of one read


class _BlockingPool(BlockingPool):
    @staticmethod
    def _help_stuff_finish(inqueue: Any, task_handler: Any, _pool: Any) -> None:
        """billiard's drain of the task queue, but without waiting forever for its lock."""
        if not inqueue._rlock.acquire(timeout=LOCK_WAIT):
            log.warning("a pool process died holding the task queue's lock: not draining it")
            return
        while task_handler.is_alive() and inqueue._reader.poll():
            inqueue._reader.recv()


class TaskPool(CeleryTaskPool):
    """The prefork pool (`-P prefork`), taking the bounded shutdown above."""

    BlockingPool = _BlockingPool
