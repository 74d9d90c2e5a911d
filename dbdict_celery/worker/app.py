"""The Celery app: `celery -A dbdict_celery worker` finds it as `dbdict_celery.app`.

The settings are those the job table's guarantees depend on (see docs/guarantees.md):
JSON only, a message acknowledged only once its job has ended, one message
prefetched at a time (so priorities hold), and broker priorities that follow
the row's priority. The broker is `DBDICT_BROKER`, else an embedded SQLite
broker in DBDICT_HOME, so a laptop needs no server. A module named by
`DBDICT_CELERY_CONFIG` may override any setting, as Celery's
`config_from_envvar` does.
"""

from __future__ import annotations

import math
import os
from functools import cached_property
from typing import Any

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy.pool import NullPool

from dbdict_celery.config import DEFAULT_QUEUE, broker_url, drive_interval, reconcile_interval
from dbdict_celery.errors import UsageError

QUEUE = DEFAULT_QUEUE
LEVELS = 10  # broker priority levels, 0..9
RECONCILE = "dbdict_celery.reconcile"  # the reconcile task's name, for beat and Flower
DRIVE_STUDIES = "dbdict_celery.drive_studies"  # the detached studies' task (search layer)
DAY = 24 * 3600
EMBEDDED = "sqla+sqlite:///"
EMBEDDED_TRANSPORT = "dbdict_celery.worker.kombu_internals:EmbeddedTransport"
PREFORK_POOL = "dbdict_celery.worker.prefork_pool:TaskPool"


def transport_options(url: str) -> dict[str, Any]:
    """Broker settings for the transport that `url` names."""
    scheme = url.partition("://")[0]
    if scheme.startswith("sqla+"):
        # handed to SQLAlchemy's create_engine: no pooled connection may cross a fork
        return {"poolclass": NullPool, "connect_args": {"timeout": 60}}
    if scheme.startswith(("redis", "rediss", "sentinel")):
        return {
            # a job running longer than this gets its message delivered again;
            # the copy finds the row RUNNING and does nothing
            "visibility_timeout": DAY,
            "priority_steps": list(range(LEVELS)),
            "queue_order_strategy": "priority",
        }
    return {}


def broker_settings(url: str) -> dict[str, Any]:
    """The app's settings for the broker at `url` (an embedded one's folder is made here)."""
    embedded = url.startswith(EMBEDDED)
    if embedded:
        os.makedirs(os.path.dirname(os.path.abspath(url[len(EMBEDDED) :])), exist_ok=True)
    return {
        "broker_url": url.removeprefix("sqla+") if embedded else url,  # the class says sqla
        "broker_transport": EMBEDDED_TRANSPORT if embedded else None,
        "broker_transport_options": transport_options(url),
    }


def is_embedded(celery: Celery) -> bool:
    """Whether `celery` uses the embedded SQLite broker."""
    return bool(celery.conf.broker_transport == EMBEDDED_TRANSPORT)


def broker_priority(priority: float, transport: str) -> int:
    """The broker priority of a row priority: higher rows run first on every broker.

    Rows map onto 10 levels, 3 per unit (1.0 -> 3, RESTART_PRIORITY 2.0 -> 6,
    3.0 and above -> 9, 0 and below -> 0). RabbitMQ runs high numbers
    first; Redis runs 0 first, so its number is reversed.
    """
    level = min(LEVELS - 1, max(0, math.floor(3 * priority)))
    return LEVELS - 1 - level if transport == "redis" else level


class DbdictCelery(Celery):
    """The Celery app, whose workers take a name of their own when not given one with -n."""

    @cached_property
    def Worker(self) -> Any:
        """`celery worker`'s worker class (see `node_name`: on one host two workers started
        without -n would share a name, and on RabbitMQ the second would die)."""
        from dbdict_celery.worker.node_name import Worker  # Celery's worker: loaded to start one

        return self.subclass_with_self(Worker)


def create_app() -> Celery:
    """A configured app; the broker URL is read now, from the environment.

    `celery --broker URL` sets CELERY_BROKER_URL before the app is imported,
    and that wins, as it does in Celery's own settings.
    """
    url = os.environ.get("CELERY_BROKER_URL") or broker_url()
    scheme = url.partition("://")[0].partition("+")[0]
    if scheme not in TRANSPORT_ALIASES:
        raise UsageError(
            f"unknown broker {maybe_sanitize_url(url)!r}: use redis://, amqp:// or "
            "sqla+sqlite:///path (DBDICT_BROKER, or celery --broker)"
        )
    kind = "redis" if scheme in ("redis", "rediss", "sentinel") else scheme  # as kombu names it
    tasks = ["dbdict_celery.worker.tasks", "dbdict_celery.search.detached"]
    celery = DbdictCelery("dbdict_celery", include=tasks)
    celery.conf.update(
        **broker_settings(url),
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        event_serializer="json",
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_pool=PREFORK_POOL,  # Celery's, minus a shutdown hang (prefork_pool.py; -P overrides)
        task_default_queue=QUEUE,
        task_queue_max_priority=LEVELS - 1,
        # Task events cost a fifth of a short job's throughput: off, unless asked for. Flower
        # turns them on in every worker while it runs (and `celery worker -E` does too).
        worker_send_task_events=False,
        # `celery -A dbdict_celery beat` repairs the table of DBDICT_DB with no config file
        beat_schedule={
            "dbdict-reconcile": {"task": RECONCILE, "schedule": reconcile_interval()},
            "dbdict-drive-studies": {  # a look not taken in time is dropped: the next will do
                "task": DRIVE_STUDIES,
                "schedule": drive_interval(),
                "options": {"expires": drive_interval(), "priority": broker_priority(3.0, kind)},
            },
        },
        # no task-sent events: one more publish per message would halve schedule's speed
    )
    celery.config_from_envvar("DBDICT_CELERY_CONFIG", silent=True)
    return celery


app = create_app()
