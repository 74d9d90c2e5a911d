"""Scheduling: validated jobs into the table (the Python API behind `dbdict schedule`)."""

from __future__ import annotations

from collections.abc import Sequence

from dbdict_celery.channel import resolve_experiment
from dbdict_celery.job import DEFAULT_PRIORITY, Inserted, NewJob
from dbdict_celery.params import expand, flatten, parse
from dbdict_celery.store import JobStore
from dbdict_celery.sync import Remote


def schedule(
    store: JobStore,
    experiment: str,
    params: Sequence[str],
    priority: float = DEFAULT_PRIORITY,
    exproot: str | None = None,
) -> Inserted:
    """Insert one job, unless the same experiment and parameters are already in the table.

    The experiment must be importable here and now, and the parameters must
    parse, before anything is written: a typo never becomes a row.
    """
    resolve_experiment(experiment)
    flat = flatten(expand(parse(*params)))
    root = str(Remote.parse(exproot)) if exproot else None
    (batch,) = store.insert([NewJob(experiment, flat, priority, root)])
    return batch[0]
