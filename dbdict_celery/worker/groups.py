"""Waking the parked jobs of a capped group (`--max-running`, see `store/groups.py`): a
message for each job the group has room for, sent when one of its runs ends and at each
reconcile pass."""

from __future__ import annotations

import functools
import logging

from dbdict_celery.errors import DbdictError
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.enqueue import Ring, enqueue, task_id_of

log = logging.getLogger(__name__)


def wake(store: JobStore, group: str) -> list[int]:
    """Send a message to as many parked jobs of `group` as it has room for; their ids.
    Jobs whose message could not be sent are parked again; a database that fails leaves
    them all to the next reconcile pass."""
    try:
        woken = store.wake(group, functools.partial(task_id_of, store.path.table))
    except DbdictError as error:
        log.error("group %s: its parked jobs were not woken: %s", group, error)
        return []
    if not woken:
        return []
    try:
        ids = {job.id: job.task_id or "" for job in woken}
        enqueue(store, [Ring.of(job) for job in woken], record=False, task_ids=ids)
    except DbdictError as error:
        log.error("group %s: %s woken jobs were not sent, and wait again: %s",
                  group, len(woken), error)  # fmt: skip
        store.unwake(woken)
        return []
    return [job.id for job in woken]
