"""`dbdict plot --optimization NAME`: how a study's best value went, by trial and by time,
and which parameters mattered (Optuna's own importances)."""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING

from dbdict_celery.cli.figures import log_scale, new_figure
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from dbdict_celery.search.definition import Definition
    from dbdict_celery.store.job import Job
    from dbdict_celery.store.store import JobStore


def optimization_plot(store: JobStore, definition: Definition) -> Figure:
    """Three panels: each DONE trial's value and the best so far against the trial number,
    the best so far against the time since the study began, and the parameters'
    importances."""
    if definition.goal.multi:
        raise UsageError(
            f"--optimization draws one objective, and {definition.objective} has several: "
            f"`dbdict list --pareto {definition.objective}` lists its front"
        )
    trials = store.trials(definition.name)
    key = definition.goal.keys[0]
    done = [(job, value) for job in trials if (value := _value(job, key)) is not None]
    if not done:
        raise UsageError(f"study {definition.name!r} has no DONE trial with a {key} yet")
    lower = definition.goal.directions[0].name == "MINIMIZE"
    figure = new_figure(15, 4.2)
    by_trial, by_time, importance = figure.subplots(1, 3)
    _by_trial(by_trial, done, key, lower)
    _by_time(by_time, trials, done, key, lower)
    _importances(importance, store, definition)
    figure.suptitle(f"study {definition.name}: {definition.objective}")
    return figure


def _by_trial(axes: Axes, done: list[tuple[Job, float]], key: str, lower: bool) -> None:
    numbers = [job.trial or 0 for job, _ in done]
    values = [value for _, value in done]
    axes.scatter(numbers, values, s=12, alpha=0.6, label="a DONE trial")
    axes.step(
        numbers, _best_so_far(values, lower), where="post", color="tab:red", label="best so far"
    )
    axes.set(xlabel="trial", ylabel=key, title="by trial")
    if log_scale(values):
        axes.set_yscale("log")
    axes.legend(loc="best", fontsize="small")


def _by_time(
    axes: Axes, trials: list[Job], done: list[tuple[Job, float]], key: str, lower: bool
) -> None:
    began = min(job.created_at for job in trials if job.created_at is not None)
    ended = sorted(
        ((job.finished_at, value) for job, value in done if job.finished_at is not None),
        key=lambda pair: pair[0],
    )
    minutes = [_minutes(began, moment) for moment, _ in ended]
    axes.step(minutes, _best_so_far([v for _, v in ended], lower), where="post", color="tab:red")
    axes.set(xlabel="minutes since the study began", ylabel=f"best {key}", title="by time")
    if log_scale([value for _, value in ended]):
        axes.set_yscale("log")


def _importances(axes: Axes, store: JobStore, definition: Definition) -> None:
    from dbdict_celery.search.importances import param_importances

    importances = param_importances(store, definition)
    axes.set(title="parameter importances")
    if importances is None:
        axes.text(0.5, 0.5, "needs 2 parameters and 2 DONE trials", ha="center", va="center")
        axes.set_axis_off()
        return
    names = list(reversed(importances))
    axes.barh(names, [importances[name] for name in names])
    axes.set(xlabel="importance (fANOVA)")


def _best_so_far(values: list[float], lower: bool) -> list[float]:
    best: list[float] = []
    for value in values:
        best.append(value if not best else (min if lower else max)(best[-1], value))
    return best


def _minutes(began: datetime, moment: datetime) -> float:
    return (moment - began).total_seconds() / 60


def _value(job: Job, key: str) -> float | None:
    value = job.state.get(key)
    if job.status is not Status.DONE or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None
