"""A worker's GPUs, handed to its jobs: each job that asks for K runs with K of them in
`CUDA_VISIBLE_DEVICES`, none used by two jobs at once.

A worker given devices (`DBDICT_GPUS=0,1,2,3`) consumes, beside each of its queues
`Q`, the queues `Q.gpus1` to `Q.gpusN` (N: its device count), where the jobs of
`schedule --gpus K` are sent: a job asking for more GPUs than any worker has waits
in the broker, booked by no one, and a worker without devices never sees one.

Which devices are taken is known from lock files, one per device, in a folder
(`DBDICT_GPU_LOCKS`, default `<temp>/dbdict-gpus-<uid>`), each held with a POSIX
record lock by the pool process running the job that has it. The kernel drops such a
lock the moment its holder ends, however it ends, and a process forked from the holder
(the experiment process) does not inherit it: a device is never left taken by a dead
run. Workers that share devices must share the folder (two workers of one user on one
machine do by default); workers with devices of their own need folders of their own
(the Slurm script gives each allocation one: Slurm numbers each allocation's GPUs from 0).
Such locks belong to a process, not a thread: a worker given GPUs must run its jobs in
pool processes of their own (prefork, and process isolation), which it checks at start.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from celery.signals import celeryd_after_setup

from dbdict_celery.config import gpus
from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.store.limits import GPU_QUEUE

LOOK = 0.2  # seconds between two looks for free devices, while a job waits for them


class Stopped(Exception):
    """The wait for devices ended by a stop request: the job was not booked."""


def gpu_queues(queue: str, devices: int) -> list[str]:
    """The queues a worker with `devices` GPUs consumes for its queue `queue`."""
    return [f"{queue}{GPU_QUEUE}{count}" for count in range(1, devices + 1)]


@celeryd_after_setup.connect
def _consume_gpu_queues(instance: Any = None, **_: Any) -> None:
    """A worker given GPUs consumes, beside each of its queues, that queue's GPU queues up
    to its device count (added before it starts consuming)."""
    count = len(gpus())
    if not count or instance is None:
        return
    queues = instance.app.amqp.queues
    for name in list(queues.consume_from):
        for queue in gpu_queues(name, count):
            queues.select_add(queue)


def _lock_path(device: str) -> str:
    default = os.path.join(tempfile.gettempdir(), f"dbdict-gpus-{os.getuid()}")
    folder = os.environ.get("DBDICT_GPU_LOCKS") or default
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, f"{device}.lock")


@contextlib.contextmanager
def devices_taken(
    devices: tuple[str, ...], count: int, stop: StopFlag | None
) -> Iterator[list[str]]:
    """While inside, `count` of `devices` are this process's alone (their names, in the
    worker's order); waits for them, looking every LOOK seconds, and raises Stopped if a
    stop is asked meanwhile. No device is taken for `count` 0."""
    held: dict[str, int] = {}
    try:
        while True:
            for device in devices:
                if len(held) == count:
                    break
                handle = os.open(_lock_path(device), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
                try:
                    fcntl.lockf(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    os.close(handle)
                    continue
                held[device] = handle
            if len(held) == count:
                break
            _let_go(held)  # never hold some while waiting for more: two jobs would deadlock
            if stop is not None and stop.requested:
                raise Stopped(f"stopped while waiting for {count} GPUs")
            time.sleep(LOOK)
        yield list(held)
    finally:
        _let_go(held)


def _let_go(held: dict[str, int]) -> None:
    for handle in held.values():
        os.close(handle)  # closing the descriptor drops its lock
    held.clear()
