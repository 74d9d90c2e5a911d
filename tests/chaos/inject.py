"""Stops injected at one step of a run, inside a real worker (`--include tests.chaos.inject`).

`CHAOS_STOP_AT` names the step; each job is stopped there on its first run
only (a mark file per job in `CHAOS_MARKS`), with the signal a revoke or a
shutdown sends its pool process: SIGTERM. Nothing here changes what the
worker does, only when the stop arrives.
"""

from __future__ import annotations

import functools
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dbdict_celery.experiment import channel, sync
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.dbchannel import DBRSyncChannel

POINTS = ("booking", "pull", "orig.conf", "experiment", "last push", "finish")
_running: list[int] = []  # the job this pool process runs (one at a time)


def _stop_once() -> None:
    """SIGTERM this process, the first time its job gets here."""
    job = os.environ.get("DBDICT_JOB_ID") or _running[-1]  # in an experiment process, or not
    mark = Path(os.environ["CHAOS_MARKS"]) / str(job)
    try:
        mark.touch(exist_ok=False)
    except FileExistsError:
        return
    os.kill(os.getpid(), signal.SIGTERM)


def _around(
    owner: Any, name: str, before: bool, when: Callable[..., bool] = lambda *_: True
) -> None:
    """Wrap `owner.name` to stop this process just before or just after it runs."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if before and when(*args):
            _stop_once()
        result = original(*args, **kwargs)
        if not before and when(*args):
            _stop_once()
        return result

    setattr(owner, name, wrapper)


def _remember_the_job() -> None:
    book = JobStore.book

    @functools.wraps(book)
    def booking(self: JobStore, *args: Any, **kwargs: Any) -> Any:
        job = book(self, *args, **kwargs)
        if job is not None:
            _running.append(job.id)
            if os.environ.get("CHAOS_STOP_AT") == "booking":
                _stop_once()
        return job

    JobStore.book = booking  # type: ignore[method-assign]


_finishing: list[bool] = []  # set while save_final runs: its save is not mid-run


def _in_the_experiment(*_: Any) -> bool:
    return not _finishing


def _mark_the_last_save() -> None:
    save_final = DBRSyncChannel.save_final

    @functools.wraps(save_final)
    def finishing(self: DBRSyncChannel) -> None:
        _finishing.append(True)
        try:
            save_final(self)
        finally:
            _finishing.pop()

    DBRSyncChannel.save_final = finishing  # type: ignore[method-assign]


def _install(point: str) -> None:
    _remember_the_job()
    if point == "pull":
        _around(sync, "pull", before=True)
    elif point == "orig.conf":
        _around(
            channel, "_write_conf", before=False, when=lambda path, *_: path.endswith("orig.conf")
        )
    elif point == "experiment":
        _around(DBRSyncChannel, "save", before=False, when=_in_the_experiment)
        _mark_the_last_save()
    elif point == "last push":
        _around(DBRSyncChannel, "save_final", before=True)
    elif point == "finish":
        _around(JobStore, "finish", before=True)


if os.environ.get("CHAOS_STOP_AT") in POINTS:
    _install(os.environ["CHAOS_STOP_AT"])
