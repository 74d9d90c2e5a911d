"""Which jobs have a message in the broker: the waiting ones and those a worker holds.

`dbdict reconcile` sends a message again only for START jobs that have none.
Redis keeps a queue as lists (one per priority level) plus a hash of
delivered, unacknowledged messages; the embedded SQLAlchemy broker keeps
rows. Both can be read without taking anything. RabbitMQ cannot be read
without consuming, so there the answer is "unknown".
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any

from dbdict_celery.worker.app import app
from dbdict_celery.worker.enqueue import RUN_JOB

PAGE = 10_000


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
            envelopes = _redis_envelopes(channel, sorted(queues), time.time() - held_for)
        elif kind == "sql":
            envelopes = _sqlalchemy_envelopes(channel, sorted(queues))
        else:
            return None
        return {job_id for owner, job_id in _jobs(envelopes) if owner == table}


def _redis_envelopes(
    channel: Any, names: list[str], delivered_since: float
) -> Iterator[dict[str, Any]]:
    client = channel.client
    lists = [
        list_name
        for name in names
        for list_name in (
            name,
            *(f"{name}{channel.sep}{level}" for level in channel.priority_steps if level),
        )
    ]
    for queue in lists:
        for start in range(0, int(client.llen(queue)), PAGE):
            for payload in client.lrange(queue, start, start + PAGE - 1):
                yield json.loads(payload)
    for tag, delivered in client.hscan_iter(channel.unacked_key):
        when = client.zscore(channel.unacked_index_key, tag)
        if when is not None and when < delivered_since:
            continue
        message, _exchange, _routing_key = json.loads(delivered)
        yield message


def _sqlalchemy_envelopes(channel: Any, names: list[str]) -> Iterator[dict[str, Any]]:
    message = channel.message_cls
    queue = channel.queue_cls
    waiting = (
        channel.session.query(message.payload)
        .join(queue, message.queue_id == queue.id)
        .filter(queue.name.in_(names), message.visible.is_(True))
    )
    try:
        for (payload,) in waiting.yield_per(PAGE):
            yield json.loads(payload)
    finally:
        channel.session.commit()


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
