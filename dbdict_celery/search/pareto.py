"""The non-dominated jobs of a table for several objectives: `dbdict list --pareto`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dbdict_celery.search.objective import Objective
from dbdict_celery.store.job import Job


def pareto_front(jobs: Sequence[Job], objective: Objective) -> list[Job]:
    """The jobs no other job beats on every objective (at least as good on all, better on
    one), in the order given. Jobs without a finite number for each key are left out."""
    scored = [(job, points) for job in jobs if (points := _points(job, objective)) is not None]
    return [
        job
        for job, mine in scored
        if not any(_dominates(theirs, mine) for _, theirs in scored if theirs is not mine)
    ]


def _points(job: Job, objective: Objective) -> list[float] | None:
    """The job's objective values, each turned so that lower is better."""
    values: list[float] = []
    for key, direction in zip(objective.keys, objective.directions, strict=True):
        value: Any = job.state.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not math.isfinite(value):
            return None
        values.append(value if direction.name == "MINIMIZE" else -value)
    return values


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x <= y for x, y in zip(a, b, strict=True)) and any(
        x < y for x, y in zip(a, b, strict=True)
    )
