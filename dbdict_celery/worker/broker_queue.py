"""Which jobs have a message in the broker: the waiting ones and those a worker holds.

`dbdict reconcile` sends a message again only for START jobs that have none.
Redis keeps a queue as lists (one per priority level) plus a hash of
delivered, unacknowledged messages; the embedded SQLAlchemy broker keeps
rows. Both can be read without taking anything, through kombu's internals
(`kombu_internals.py`). RabbitMQ cannot be read without consuming, so there
the answer is "unknown".
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from dbdict_celery.worker.app import app
from dbdict_celery.worker.enqueue import RUN_JOB
from dbdict_celery.worker.kombu_internals import redis_envelopes, sqlalchemy_envelopes


def jobs_with_messages(table: str, queues: Iterable[str], held_for: float) -> set[int] | None:
    """Ids of `table`'s jobs that have a run_job message in one of `queues`, or held by a
    worker; None if the broker cannot tell.

    A message a worker took but has not acknowledged counts for `held_for` seconds after
    its delivery: longer, its worker may be dead (SIGKILL keeps it unacknowledged for the
    whole visibility timeout), and a surplus message is harmless where a lost one is not.
    """
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        kind = connection.transport.driver_type
        if kind == "redis":
            envelopes = redis_envelopes(channel, sorted(queues), time.time() - held_for)
        elif kind == "sql":
            envelopes = sqlalchemy_envelopes(channel, sorted(queues))
        else:
            return None
        return {job_id for owner, job_id in _jobs(envelopes) if owner == table}


def _jobs(envelopes: Iterable[dict[str, Any]]) -> Iterator[tuple[str, int]]:
    """(table, job id) of each run_job message among kombu's message envelopes."""
    for envelope in envelopes:
        if envelope.get("headers", {}).get("task") != RUN_JOB:
            continue
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        if len(args) == 2 and isinstance(args[0], str) and isinstance(args[1], int):
            yield args[0], args[1]
