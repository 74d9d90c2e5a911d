"""Prometheus metrics of job tables, counted from the tables themselves.

Served at `/metrics` by the dashboard and by `dbdict metrics-server`. Every scrape reads
each table's census in one transaction (`store/census.py`), so the numbers are the
record's, whichever worker or broker is up; an autoscaler reading `dbdict_jobs` sees
jobs that wait even when the broker holds no message for them.

A table that cannot be read (its database down, the table not created yet) is reported
with `dbdict_table_up 0` and no other series, rather than failing the whole scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from dbdict_celery.config import DEFAULT_QUEUE, TablePath
from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.census import Census
from dbdict_celery.store.store import JobStore

log = logging.getLogger(__name__)
TABLE = ["database", "table"]


class TableCollector(Collector):
    """Collects the census of each table at a scrape; a table is opened at its first one, so
    that the endpoint may start before the tables exist (or their database answers)."""

    def __init__(self, paths: Sequence[TablePath]) -> None:
        self._paths = list(paths)
        self._stores: dict[TablePath, JobStore] = {}

    def collect(self) -> Iterator[Metric]:
        families = _families()
        for path in self._paths:
            labels = [path.dbname, path.table]
            try:
                store = self._stores.get(path) or JobStore(path, create=False)
                self._stores[path] = store
                census = store.census()
            except (DbdictError, SQLAlchemyError) as error:  # a pool timeout is the latter
                log.warning("metrics: table %s not read: %s", path, error)
                families["up"].add_metric(labels, 0)
                continue
            _add(families, labels, census)
        yield from families.values()


def metrics_registry(paths: Sequence[TablePath]) -> CollectorRegistry:
    """A registry holding the census of the tables at `paths`, read at each scrape."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(TableCollector(paths))
    return registry


async def metrics_response(registry: CollectorRegistry) -> Response:
    """One scrape, its census read in a worker thread: it never holds up other requests."""
    body = await run_in_threadpool(generate_latest, registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)


def metrics_app(paths: Sequence[TablePath]) -> ASGIApp:
    """An ASGI app serving the metrics of the tables at `paths`, at any path."""
    registry = metrics_registry(paths)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await (await metrics_response(registry))(scope, receive, send)

    return app


def _families() -> dict[str, GaugeMetricFamily | CounterMetricFamily]:
    return {
        "up": GaugeMetricFamily("dbdict_table_up", "1 if the table was read", labels=TABLE),
        "jobs": GaugeMetricFamily(
            "dbdict_jobs", "Jobs by status and queue", labels=[*TABLE, "status", "queue"]
        ),
        "oldest": GaugeMetricFamily(
            "dbdict_oldest_waiting_seconds",
            "How long the oldest START job of a queue has waited",
            labels=[*TABLE, "queue"],
        ),
        "running": GaugeMetricFamily(
            "dbdict_running_jobs", "RUNNING jobs by host", labels=[*TABLE, "host"]
        ),
        "attempts": CounterMetricFamily(
            "dbdict_attempts", "Runs ended, by outcome", labels=[*TABLE, "outcome"]
        ),
        "repairs": CounterMetricFamily(
            "dbdict_reconcile_repairs",
            "Runs reconcile found silent and put back or ended",
            labels=TABLE,
        ),
    }


def _add(families: dict[str, GaugeMetricFamily | CounterMetricFamily], table: list[str],
         census: Census) -> None:  # fmt: skip
    """One table's census into the families: every status of every queue the table uses,
    zeros included, so that a query for START jobs finds 0 rather than nothing."""
    families["up"].add_metric(table, 1)
    queues = {queue for _, queue in census.jobs} or {None}
    for queue in sorted(queues, key=lambda q: q or ""):
        for status in Status:
            count = census.jobs.get((status, queue), 0)
            families["jobs"].add_metric([*table, status.name, queue or DEFAULT_QUEUE], count)
    for queue, seconds in census.oldest_waiting.items():
        families["oldest"].add_metric([*table, queue or DEFAULT_QUEUE], seconds)
    for host, count in census.running_by_host.items():
        families["running"].add_metric([*table, host], count)
    for outcome, count in census.attempts.items():
        families["attempts"].add_metric([*table, outcome], count)
    families["repairs"].add_metric(table, census.repairs)
