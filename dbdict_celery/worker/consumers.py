"""Which queues a worker consumes, as far as the broker can tell: for `dbdict status`.

A job sent to a queue that no worker consumes waits, and nothing says so: its
row stays START. `dbdict status` names such queues among those holding START jobs.

- RabbitMQ counts each queue's consumers: a passive queue_declare reads the count.
- Redis keeps no such count: the live workers are asked which queues they consume
  (`inspect().active_queues()`), and answers are awaited for INSPECT_TIMEOUT
  only, so that status stays fast when no worker runs. A worker too busy to
  answer in time is missed; when none answers, none running cannot be told
  from all busy.
- The embedded broker carries no broadcast: it cannot tell.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from kombu import Connection

from dbdict_celery.errors import BrokerError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE, app
from dbdict_celery.worker.enqueue import broker_errors

INSPECT_TIMEOUT = 0.5  # seconds to wait for the live workers' answers


@dataclass(frozen=True)
class QueueConsumers:
    """The queues holding START jobs, and how many workers consume each."""

    queues: list[str]  # the queues of the table's START jobs (`dbdict` by default)
    counts: dict[str, int] | None  # consumers per queue; None when the broker could not tell
    how: str  # how the counts were learned, or why they could not be
    waiting: dict[str, int] = field(default_factory=dict)  # START jobs per queue

    def idle(self) -> list[str]:
        """The queues whose START jobs no worker takes (none if that could not be told)."""
        return [name for name in self.queues if self.counts and not self.counts[name]]


def queue_consumers(store: JobStore, timeout: float = INSPECT_TIMEOUT) -> QueueConsumers:
    """The queues of `store`'s START jobs and their consumers, as far as the broker tells:
    a broker that is down or cannot tell leaves the counts None, saying why."""
    waiting: dict[str, int] = {}
    for name, count in store.queue_counts(Status.START).items():
        waiting[name or QUEUE] = waiting.get(name or QUEUE, 0) + count
    queues = sorted(waiting)
    try:
        with broker_errors(), app.connection_for_read() as connection:
            rabbitmq = connection.transport.driver_type == "amqp"
            if not rabbitmq and not connection.supports_exchange_type("fanout"):
                how = "the embedded broker cannot tell (it carries no broadcast)"
                return QueueConsumers(queues, None, how, waiting)  # and is not even opened
            connection.ensure_connection(max_retries=0)  # status must not wait on a dead broker
            if rabbitmq:
                counts = _declared_consumers(connection, queues)
                return QueueConsumers(queues, counts, "counted by RabbitMQ", waiting)
            inspect = app.control.inspect(timeout=timeout, connection=connection)
            answers = inspect.active_queues() or {}
    except BrokerError as error:
        return QueueConsumers(queues, None, str(error), waiting)
    if not answers:
        how = f"no worker answered within {timeout:g} s: none is running, or all are too busy"
        return QueueConsumers(queues, None, how, waiting)
    consumed = Counter(queue["name"] for taken in answers.values() for queue in taken)
    how = f"asked the live workers, {len(answers)} answered within {timeout:g} s"
    return QueueConsumers(queues, {name: consumed[name] for name in queues}, how, waiting)


def _declared_consumers(connection: Connection, queues: Iterable[str]) -> dict[str, int]:
    """Each queue's consumer count, read by a passive declare (which creates nothing); a
    queue never declared has none."""
    counts = {}
    for name in queues:
        channel = connection.channel()
        try:
            counts[name] = channel.queue_declare(queue=name, passive=True).consumer_count  # type: ignore[attr-defined]
        except connection.channel_errors:  # not found: the broker closed the channel
            counts[name] = 0
        finally:
            channel.close()  # type: ignore[attr-defined]
    return counts
