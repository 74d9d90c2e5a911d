"""dbdict-celery: run thousands of experiments on a pool of machines, and trust the table.

An experiment is a function `experiment(state, channel)`; parameters are
`key=value` and `key::builder`; `channel.save()` checkpoints and
`channel.switch() == 'stop'` asks the experiment to stop cleanly.
"""

from dbdict_celery.errors import DbdictError, JobRefused, ResolveError, SyncError, UsageError
from dbdict_celery.experiment.channel import Channel, RSyncChannel, SingleChannel, StandardChannel
from dbdict_celery.experiment.params import (
    DD,
    expand,
    flatten,
    format_d,
    format_help,
    make,
    parse,
    realize,
    resolve,
)
from dbdict_celery.experiment.runner import RunOptions, RunResult, run_cmdline, run_filemerge

__all__ = [
    "DD",
    "Channel",
    "DbdictError",
    "JobRefused",
    "RSyncChannel",
    "ResolveError",
    "RunOptions",
    "RunResult",
    "SingleChannel",
    "StandardChannel",
    "SyncError",
    "UsageError",
    "expand",
    "flatten",
    "format_d",
    "format_help",
    "make",
    "parse",
    "realize",
    "resolve",
    "run_cmdline",
    "run_filemerge",
]


def __getattr__(name: str) -> object:
    """`dbdict_celery.app`, the Celery app with its task, imported on first use (Celery is
    not light, and `dbdict run` has no need of it)."""
    if name == "app":
        from dbdict_celery.worker import tasks  # registers run_job with the app

        return tasks.run_job.app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
