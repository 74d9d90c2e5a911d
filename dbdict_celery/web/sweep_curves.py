"""A sweep's curves on one chart: one key's curve of every job the grid's filters choose
(up to MAX_CURVES), coloured by the value of a parameter, as `dbdict plot --curves KEY
--hue KEY` draws them.

The points are read as flat columns (`curve_columns`), not an object each, and every
curve is thinned to POINTS_PER_CURVE points: five hundred curves of a thousand steps
make a page of a few hundred kilobytes, drawn at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from dbdict_celery.errors import UsageError
from dbdict_celery.store.job import value_of
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.chart import Chart, line_chart
from dbdict_celery.web.grid import GridQuery

MAX_CURVES = 1000
POINTS_PER_CURVE = 200
KEYS_FROM = 20  # jobs whose curve keys are offered to choose from


@dataclass(frozen=True)
class SweepCurves:
    """The chart of one key over the chosen jobs, and what it was made of."""

    query: GridQuery
    keys: list[str]
    key: str | None
    hue: str | None
    drawn: int  # curves on the chart
    more: bool  # more jobs matched than MAX_CURVES
    chart: Chart | None


def sweep_curves(store: JobStore, query: GridQuery, key: str | None,
                 hue: str | None) -> SweepCurves:  # fmt: skip
    """The curves of `key` (None: the first key the first jobs reported) of the jobs
    `query` chooses, coloured by `hue` (a parameter or column; None: one colour)."""
    jobs = store.jobs(query.statuses or None, query.where, MAX_CURVES + 1, query.sort)
    shown = jobs[:MAX_CURVES]
    keys = sorted({name for job in shown[:KEYS_FROM] for name in store.curve_summaries(job.id)})
    chosen = key or (keys[0] if keys else None)
    if chosen is None:
        return SweepCurves(query, keys, None, hue, 0, len(jobs) > MAX_CURVES, None)
    columns = store.curve_columns(chosen, [job.id for job in shown])
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for job_id, step, value in zip(columns.job_ids, columns.steps, columns.values, strict=True):
        series[f"job {job_id}"].append((step, value))
    if key is not None and not series:
        raise UsageError(f"none of these jobs reported {key!r}")
    groups = {f"job {job.id}": f"{hue}={value_of(job, hue)}" if hue else chosen for job in shown}
    chart = line_chart(series, groups={name: groups[name] for name in series},
                       most=POINTS_PER_CURVE)  # fmt: skip
    return SweepCurves(query, keys, chosen, hue, len(series), len(jobs) > MAX_CURVES, chart)
