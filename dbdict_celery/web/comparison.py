"""Several jobs side by side: what differs between them (as `dbdict diff` tells it), and
one curve of each drawn on the same axes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dbdict_celery.errors import UsageError
from dbdict_celery.store.comparison import Difference, RunRef, compare
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.chart import Chart, line_chart

MAX_COMPARED = 8  # jobs on one page: as many as the chart has colours


@dataclass(frozen=True)
class JobComparison:
    """The jobs compared, what differs between the first and each other one, the curve keys
    any of them reported, and the chosen key's curves overlaid."""

    jobs: list[Job]
    differences: dict[int, list[Difference]]  # by the id of the job compared with the first
    keys: list[str]
    key: str | None
    chart: Chart | None


def job_comparison(store: JobStore, ids: Sequence[int], key: str | None) -> JobComparison:
    """Compare the jobs `ids` (2 to MAX_COMPARED; the first is the reference); `key` is the
    curve to overlay (None: the first key any of them reported)."""
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise UsageError(f"compare 2 to {MAX_COMPARED} jobs, not {len(ids)}")
    jobs = [store.get(job_id) for job_id in ids]
    first, *others = jobs
    differences = {other.id: compare(store, RunRef(first.id), RunRef(other.id)) for other in others}
    keys = sorted({name for job in jobs for name in store.curve_summaries(job.id)})
    if key is not None and key not in keys:
        raise UsageError(f"none of these jobs reported {key!r}")
    chosen = key or (keys[0] if keys else None)
    chart = None
    if chosen is not None:
        series: dict[str, list[tuple[float, float]]] = {f"job {job.id}": [] for job in jobs}
        for point in store.metrics(list(ids), [chosen]):
            series[f"job {point.job_id}"].append((point.step, point.value))
        chart = line_chart(series)
    return JobComparison(jobs, differences, keys, chosen, chart)
