"""Ringing the doorbell: one `run_job` message per job, all over one broker connection.

A message carries only the table name and the job id; the worker reads the
rest from its own job database. Messages are sent after the rows are
committed, so a worker never receives an id it cannot find.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import NamedTuple

from celery.utils import uuid
from kombu import Producer
from kombu.exceptions import OperationalError

from dbdict_celery.errors import BrokerError
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import QUEUE, app, broker_priority

RUN_JOB = "dbdict_celery.run_job"
CONNECT_RETRIES = 2
PUBLISH_BATCH = 1000  # messages written to Redis in one pipelined round trip


class Ring(NamedTuple):
    """One message to send: the job, the priority of its row, and its queue (None: the
    default queue, which every worker without -Q consumes)."""

    job_id: int
    priority: float
    queue: str | None = None

    @classmethod
    def of(cls, job: Job, priority: float | None = None) -> Ring:
        """The message of a job as its row stands (or at another `priority`)."""
        return cls(job.id, job.priority if priority is None else priority, job.queue)


class Enqueuer:
    """Sends `run_job` messages for one table over one broker connection.

    Use it as a context manager around any number of `send` calls. With
    `record`, each job's row is given the id of the task it was sent as.
    """

    def __init__(self, store: JobStore, record: bool = True) -> None:
        self.store = store
        self.record = record
        self._stack = contextlib.ExitStack()
        self._producer: Producer | None = None
        self._declared: set[str] = set()

    def __enter__(self) -> Enqueuer:
        """Connect now: a broker that is down fails the command before any row is written."""
        with broker_errors():
            self._producer = self._stack.enter_context(app.producer_or_acquire())
            connection = self._producer.connection
            assert connection is not None
            connection.ensure_connection(max_retries=CONNECT_RETRIES)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stack.close()

    def send(
        self,
        jobs: Iterable[Ring],
        countdown: float | None = None,
        sole: bool = False,
        task_ids: Mapping[int, str] | None = None,
    ) -> list[str]:
        """Send one message per job; returns the task ids, in order. With `sole` (and
        `record`), each is recorded as the only message that may book its job
        (`sole_task_id`): any sent before is stale. `task_ids` names the messages of jobs
        whose ids were recorded before (see `JobStore.wake`).

        On Redis the messages go out pipelined, up to PUBLISH_BATCH per round trip;
        each queue is declared once, not for every message.
        """
        assert self._producer is not None, "use the Enqueuer as a context manager"
        transport = self._producer.connection.transport.driver_type  # type: ignore[union-attr]
        sent: dict[int, str] = {}
        table = self.store.path.table
        with broker_errors(), self._producer.batch(max_size=PUBLISH_BATCH):  # type: ignore[attr-defined]
            for job_id, priority, queue in jobs:
                name = queue or QUEUE
                if name not in self._declared:
                    self._producer.maybe_declare(app.amqp.queues[name])
                    self._declared.add(name)
                task_id = (task_ids or {}).get(job_id) or task_id_of(table, job_id)
                app.send_task(
                    RUN_JOB,
                    args=(table, job_id),
                    task_id=task_id,
                    priority=broker_priority(priority, transport),
                    countdown=countdown,
                    producer=self._producer,
                    queue=name,
                    declare=[],
                )
                sent[job_id] = task_id
        if self.record:
            self.store.set_task_ids(sent, sole)
        return list(sent.values())


def task_id_of(table: str, job_id: int) -> str:
    """A new task id that names its job, `TABLE-ID-UUID`: Flower's task list, the worker's
    log and `celery inspect` show the id of every task, so which job a task runs reads off
    it at a glance, even where Flower knows nothing else of the task (it shows a task
    whose `task-received` event it missed with no name). A table name never holds `-`,
    and the id stays safe in a URL (Flower's task page is /task/ID)."""
    return f"{table}-{job_id}-{uuid()}"


def enqueue(
    store: JobStore,
    jobs: Iterable[Ring],
    record: bool = True,
    countdown: float | None = None,
    sole: bool = False,
    task_ids: Mapping[int, str] | None = None,
) -> list[str]:
    """Send messages for a few jobs (see `Enqueuer.send`)."""
    with Enqueuer(store, record) as enqueuer:
        return enqueuer.send(jobs, countdown, sole, task_ids)


@contextlib.contextmanager
def broker_errors() -> Iterator[None]:
    """The broker's failures (down, refusing our credentials...) as one BrokerError line."""
    connection = app.connection_for_write()
    failures: tuple[type[BaseException], ...] = (
        OperationalError,
        *connection.connection_errors,
        *connection.channel_errors,
    )
    try:
        yield
    except failures as error:
        where = connection.as_uri()  # password masked
        detail = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise BrokerError(f"cannot reach the broker at {where}: {detail}") from None
