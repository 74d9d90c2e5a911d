"""A worker's node name: one of its own when `celery worker` was given no `-n`.

Celery names every worker `celery@HOST` unless told otherwise, so two workers
started the same way on one host share a name. On RabbitMQ the second cannot
take that name's control queue (`RESOURCE_LOCKED ... celery@HOST.celery.pidbox`)
and dies; on Redis both run, but Flower, `celery inspect` and the runs' records
cannot tell them apart. A worker given no name is called `dbdict-PID@HOST`
instead: unique on its host while it runs. A name given with `-n` is kept as it is.

Imported only when a worker starts (the app names this class lazily), so that
`dbdict schedule` never loads Celery's worker.
"""

from __future__ import annotations

import os
from typing import Any

import click
from celery.apps.worker import Worker as CeleryWorker
from celery.utils.nodenames import gethostname, nodename
from click.core import ParameterSource

PREFIX = "dbdict"


def default_node_name() -> str:
    """This process's name when it was given none: `dbdict-PID@HOST`."""
    return nodename(f"{PREFIX}-{os.getpid()}", gethostname())


def named_by_user(hostname: str | None) -> bool:
    """Whether `hostname` was chosen by the user, not filled in by Celery: the `celery worker`
    command hands its own default (`celery@HOST`) over as if it had been typed."""
    if hostname is None:
        return False
    context = click.get_current_context(silent=True)
    source = context.get_parameter_source("hostname") if context else None
    return source is not ParameterSource.DEFAULT


class Worker(CeleryWorker):
    """Celery's worker, named `dbdict-PID@HOST` unless given a name."""

    def __init__(self, app: Any = None, hostname: str | None = None, **kwargs: Any) -> None:
        if not named_by_user(hostname):
            hostname = default_node_name()
        super().__init__(app, hostname, **kwargs)
