"""dbdict-celery: run thousands of experiments on a pool of machines, and trust the table.

An experiment is a function `experiment(state, channel)`; parameters are
`key=value` and `key::builder`; `channel.save()` checkpoints and
`channel.switch() == 'stop'` asks the experiment to stop cleanly.

The names below are the public Python API, the same lifecycle as the
`dbdict` command::

    import dbdict_celery as dbdict

    jobs = dbdict.JobStore.open()                     # $DBDICT_DB, else the embedded table
    planned = dbdict.plan("my_experiments.experiment", ["lr=choice(0.1, 0.01)"])
    dbdict.submit(jobs, planned)                      # rows, then one message per job
    dbdict.wait(jobs)                                 # until nothing is START or RUNNING
    dbdict.export(jobs, "results.csv")

Every other module is internal and may change. Names are imported on first
use: `import dbdict_celery` costs almost nothing, and only the names of the
worker layer (submit, cancel, requeue, reconcile, app) load Celery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from dbdict_celery.errors import BrokerError as BrokerError
    from dbdict_celery.errors import DbdictError as DbdictError
    from dbdict_celery.errors import ExperimentUnavailable as ExperimentUnavailable
    from dbdict_celery.errors import ExprootUnreachable as ExprootUnreachable
    from dbdict_celery.errors import JobNotFound as JobNotFound
    from dbdict_celery.errors import JobRefused as JobRefused
    from dbdict_celery.errors import NotRunnableHere as NotRunnableHere
    from dbdict_celery.errors import ResolveError as ResolveError
    from dbdict_celery.errors import StoreError as StoreError
    from dbdict_celery.errors import SyncError as SyncError
    from dbdict_celery.errors import TableMissing as TableMissing
    from dbdict_celery.errors import UnstorableValue as UnstorableValue
    from dbdict_celery.errors import UsageError as UsageError
    from dbdict_celery.experiment.channel import Channel as Channel
    from dbdict_celery.experiment.channel import RSyncChannel as RSyncChannel
    from dbdict_celery.experiment.channel import SingleChannel as SingleChannel
    from dbdict_celery.experiment.channel import StandardChannel as StandardChannel
    from dbdict_celery.experiment.params import DD as DD
    from dbdict_celery.experiment.params import expand as expand
    from dbdict_celery.experiment.params import flatten as flatten
    from dbdict_celery.experiment.params import format_d as format_d
    from dbdict_celery.experiment.params import format_help as format_help
    from dbdict_celery.experiment.params import make as make
    from dbdict_celery.experiment.params import parse as parse
    from dbdict_celery.experiment.params import realize as realize
    from dbdict_celery.experiment.params import resolve as resolve
    from dbdict_celery.experiment.runner import RunOptions as RunOptions
    from dbdict_celery.experiment.runner import RunResult as RunResult
    from dbdict_celery.experiment.runner import run_cmdline as run_cmdline
    from dbdict_celery.experiment.runner import run_filemerge as run_filemerge
    from dbdict_celery.experiment.status import Status as Status
    from dbdict_celery.search.optimize import Optimization as Optimization
    from dbdict_celery.search.optimize import optimize as optimize
    from dbdict_celery.search.pareto import pareto_front as pareto_front
    from dbdict_celery.search.results import StudyStatus as StudyStatus
    from dbdict_celery.search.results import study_status as study_status
    from dbdict_celery.store.attempt import Attempt as Attempt
    from dbdict_celery.store.attempt import AttemptOutcome as AttemptOutcome
    from dbdict_celery.store.comparison import Difference as Difference
    from dbdict_celery.store.comparison import RunRef as RunRef
    from dbdict_celery.store.comparison import compare as compare
    from dbdict_celery.store.export import export as export
    from dbdict_celery.store.grouping import Aggregate as Aggregate
    from dbdict_celery.store.grouping import Group as Group
    from dbdict_celery.store.job import Job as Job
    from dbdict_celery.store.limits import Limits as Limits
    from dbdict_celery.store.logs import read_log as read_log
    from dbdict_celery.store.metrics import CurveSummary as CurveSummary
    from dbdict_celery.store.metrics import MetricPoint as MetricPoint
    from dbdict_celery.store.operations import Cancellation as Cancellation
    from dbdict_celery.store.plan import Plan as Plan
    from dbdict_celery.store.plan import plan as plan
    from dbdict_celery.store.queries import Summary as Summary
    from dbdict_celery.store.store import JobStore as JobStore
    from dbdict_celery.store.view import create_view as create_view
    from dbdict_celery.store.wait import wait as wait
    from dbdict_celery.worker.control import Prioritized as Prioritized
    from dbdict_celery.worker.control import cancel as cancel
    from dbdict_celery.worker.control import prioritize as prioritize
    from dbdict_celery.worker.control import requeue as requeue
    from dbdict_celery.worker.dbrunner import LoopReport as LoopReport
    from dbdict_celery.worker.dbrunner import run_sql as run_sql
    from dbdict_celery.worker.reconcile import Reconciliation as Reconciliation
    from dbdict_celery.worker.reconcile import reconcile as reconcile
    from dbdict_celery.worker.submit import Submission as Submission
    from dbdict_celery.worker.submit import submit as submit

    app: Celery

_WHERE = {
    # experiments and running them here
    "DD": "experiment.params",
    "expand": "experiment.params",
    "flatten": "experiment.params",
    "format_d": "experiment.params",
    "format_help": "experiment.params",
    "make": "experiment.params",
    "parse": "experiment.params",
    "realize": "experiment.params",
    "resolve": "experiment.params",
    "Channel": "experiment.channel",
    "SingleChannel": "experiment.channel",
    "StandardChannel": "experiment.channel",
    "RSyncChannel": "experiment.channel",
    "RunOptions": "experiment.runner",
    "RunResult": "experiment.runner",
    "run_cmdline": "experiment.runner",
    "run_filemerge": "experiment.runner",
    "Status": "experiment.status",
    # the job table
    "JobStore": "store.store",
    "Cancellation": "store.operations",
    "Job": "store.job",
    "Attempt": "store.attempt",
    "AttemptOutcome": "store.attempt",
    "MetricPoint": "store.metrics",
    "CurveSummary": "store.metrics",
    "compare": "store.comparison",
    "RunRef": "store.comparison",
    "Difference": "store.comparison",
    "Summary": "store.queries",
    "Plan": "store.plan",
    "plan": "store.plan",
    "Limits": "store.limits",
    "Aggregate": "store.grouping",
    "Group": "store.grouping",
    "wait": "store.wait",
    "export": "store.export",
    "create_view": "store.view",
    "read_log": "store.logs",
    # delivery to workers, and repairs
    "submit": "worker.submit",
    "Submission": "worker.submit",
    "cancel": "worker.control",
    "requeue": "worker.control",
    "prioritize": "worker.control",
    "Prioritized": "worker.control",
    "reconcile": "worker.reconcile",
    "Reconciliation": "worker.reconcile",
    "run_sql": "worker.dbrunner",
    "LoopReport": "worker.dbrunner",
    "app": "worker.tasks",
    # adaptive search
    "optimize": "search.optimize",
    "Optimization": "search.optimize",
    "study_status": "search.results",
    "StudyStatus": "search.results",
    "pareto_front": "search.pareto",
    # errors
    "DbdictError": "errors",
    "UsageError": "errors",
    "ResolveError": "errors",
    "JobRefused": "errors",
    "SyncError": "errors",
    "NotRunnableHere": "errors",
    "ExprootUnreachable": "errors",
    "ExperimentUnavailable": "errors",
    "StoreError": "errors",
    "JobNotFound": "errors",
    "TableMissing": "errors",
    "UnstorableValue": "errors",
    "BrokerError": "errors",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use (PEP 562), and keep it."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
