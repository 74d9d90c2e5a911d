"""The baselines a DB-authoritative runner is measured against: raw Celery, with dbdict's
own settings (broker, transport, acks_late, prefetch 1, JSON, priorities), whose task does
only the minimum such a design needs: one conditional UPDATE to book the row and one to
finish it, on a connection kept by the process; and a plain no-op task.

`RAW_DB` is the SQLAlchemy URL of the database holding the rows; the broker is dbdict's
(DBDICT_BROKER, else the embedded one). Started as `celery -A benchmarks.raw_app worker`.
"""

from __future__ import annotations

import functools
import os
import time

from celery import Celery
from sqlalchemy import Engine, Table, create_engine, update

from benchmarks.raw_rows import NOOP_TASK, TASK, raw_table
from dbdict_celery.worker.app import create_app

SETTINGS = (
    "broker_url", "broker_transport", "broker_transport_options", "task_serializer",
    "accept_content", "task_ignore_result", "task_acks_late", "task_reject_on_worker_lost",
    "worker_prefetch_multiplier", "task_default_queue", "task_queue_max_priority",
    "worker_send_task_events",
)  # fmt: skip

app = Celery("raw")
app.conf.update({name: create_app().conf[name] for name in SETTINGS})


@functools.cache
def _engine(pid: int) -> Engine:
    """One engine per process (a pool does not survive a fork)."""
    return create_engine(os.environ["RAW_DB"])


@functools.cache
def _table(name: str) -> Table:
    return raw_table(name)


@app.task(name=TASK)
def book_and_finish(table: str, job_id: int) -> None:
    t = _table(table)
    engine = _engine(os.getpid())
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.id == job_id, t.c.status == 0)
                           .values(status=1, started=time.time()))  # fmt: skip
    with engine.begin() as connection:
        connection.execute(update(t).where(t.c.id == job_id, t.c.status == 1)
                           .values(status=2, finished=time.time()))  # fmt: skip


@app.task(name=NOOP_TASK)
def noop(table: str, job_id: int, last: int) -> None:
    """Plain Celery: nothing, but for the first and the last task, which mark when the
    run started and ended (two UPDATEs in all, so that it is timed as the others are)."""
    if job_id not in (0, last):
        return
    t = _table(table)
    now = time.time()
    with _engine(os.getpid()).begin() as connection:
        values = {"started": now} if job_id == 0 else {"status": 2, "finished": now}
        connection.execute(update(t).where(t.c.id == job_id).values(**values))
