"""An optimize study as its page shows it: where it stands (`dbdict optimize --status`),
its best trials, a chart (the objective and the best so far against the trial number, or
for two objectives every trial and the Pareto front) and which parameters mattered."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from dbdict_celery.experiment.status import Status
from dbdict_celery.search.importances import param_importances
from dbdict_celery.search.pareto import pareto_front
from dbdict_celery.search.results import StudyStatus, study_status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.chart import Chart, line_chart

TRIALS = "trials"
BEST = "best so far"
FRONT = "Pareto front"


@dataclass(frozen=True)
class StudyDetail:
    """Everything the study page shows; `chart` is None when no trial has a result yet, or
    the study has more than two objectives."""

    name: str
    status: StudyStatus
    trials: list[Job]
    chart: Chart | None
    importances: dict[str, float] | None  # to the first objective; None: nothing to weigh


def study_detail(store: JobStore, name: str) -> StudyDetail:
    """The study page's content; UsageError if the table has no such study."""
    status = study_status(store, name)
    trials = store.trials(name)
    goal = status.definition.goal
    done = [job for job in trials if job.status is Status.DONE]
    chart = None
    if len(goal.keys) == 1:
        chart = _progress_chart(done, goal.keys[0], goal.directions[0].name == "MINIMIZE")
    elif len(goal.keys) == 2:
        chart = _front_chart(done, pareto_front(done, goal), goal.keys)
    importances = param_importances(store, status.definition)
    return StudyDetail(name, status, trials, chart, importances)


def _progress_chart(done: list[Job], key: str, minimize: bool) -> Chart | None:
    """Each DONE trial's objective by trial number, and the best up to each."""
    points = [
        (float(job.trial or 0), value)
        for job in done
        if (value := _number(job.state.get(key))) is not None
    ]
    if not points:
        return None
    best: list[tuple[float, float]] = []
    for trial, value in points:
        better = not best or (value < best[-1][1] if minimize else value > best[-1][1])
        best.append((trial, value if better else best[-1][1]))
    return line_chart({TRIALS: points, BEST: best}, scatter=frozenset({TRIALS}))


def _front_chart(done: list[Job], front: list[Job], keys: tuple[str, ...]) -> Chart | None:
    """Every DONE trial by its two objectives, and the front joined in order of the first."""

    def point(job: Job) -> tuple[float, float] | None:
        x, y = (_number(job.state.get(key)) for key in keys)
        return None if x is None or y is None else (x, y)

    everyone = sorted(p for job in done if (p := point(job)) is not None)
    if not everyone:
        return None
    edge = sorted(p for job in front if (p := point(job)) is not None)
    return line_chart({TRIALS: everyone, FRONT: edge}, scatter=frozenset({TRIALS}))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None
