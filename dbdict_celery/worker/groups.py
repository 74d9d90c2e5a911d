"""Waking the parked jobs of a capped group (`--max-running`, see `store/groups.py`): a
message for each job the group has room for, sent when one of its runs ends and at each
reconcile pass."""

from __future__ import annotations

import logging

from dbdict_celery.errors import BrokerError
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.enqueue import Ring, enqueue

log = logging.getLogger(__name__)


def wake(store: JobStore, group: str) -> list[int]:
    """Send a message to as many parked jobs of `group` as it has room for; their ids. A
    broker that fails leaves them to reconcile (they stay marked as on their way until a
    pass finds no message for them)."""
    woken = store.wake(group)
    if woken:
        try:
            enqueue(store, [Ring.of(job) for job in woken])
        except BrokerError as error:
            log.error("group %s: %s woken jobs were not sent: %s", group, len(woken), error)
    return [job.id for job in woken]
