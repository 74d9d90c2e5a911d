"""One job in full, as its page shows it: parameters, state, runs, the end of its output
and its learning curves.

What `dbdict show`, `dbdict logs` and `dbdict metrics` print, on one page.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dbdict_celery.errors import DbdictError
from dbdict_celery.store.attempt import Attempt, RunCounts
from dbdict_celery.store.job import Job
from dbdict_celery.store.logs import STREAMS, read_log
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.chart import Chart, line_chart

LOG_TAIL_LINES = 200
LOG_TAIL_BYTES = 64 * 1024  # a job printing megabytes per line still shows a page


@dataclass(frozen=True)
class LogTail:
    """The last lines of one output stream, where it was read from, and whether lines came
    before them."""

    stream: str
    where: str
    text: str
    cut: bool


@dataclass(frozen=True)
class JobDetail:
    """Everything the job page shows."""

    job: Job
    attempts: list[Attempt]
    run_counts: RunCounts
    results: dict[str, Any]  # the state's keys that are not parameters, or differ from them
    logs: list[LogTail]
    charts: dict[str, Chart]  # one per reported key


def job_detail(store: JobStore, job_id: int) -> JobDetail:
    """The job page's content; JobNotFound if the table has no such job."""
    job = store.get(job_id)
    results = {
        key: value
        for key, value in sorted(job.state.items())
        if key not in job.params or job.params[key] != value
    }
    return JobDetail(
        job=job,
        attempts=store.attempts(job_id),
        run_counts=store.run_counts(job_id),
        results=results,
        logs=[log_tail(store, job, stream) for stream in STREAMS],
        charts=curve_charts(store, job_id),
    )


def curve_charts(store: JobStore, job_id: int) -> dict[str, Chart]:
    """A chart per key a job reported, each read as flat arrays (no object per point: a
    curve may have millions)."""
    charts = {}
    for key in store.curve_summaries(job_id):
        columns = store.curve_columns(key, [job_id])
        charts[key] = line_chart({key: list(zip(columns.steps, columns.values, strict=True))})
    return charts


def log_tail(store: JobStore, job: Job, stream: str) -> LogTail:
    """The last lines of a job's output; a log out of reach says why instead."""
    try:
        where, content = read_log(store, job, stream, last=LOG_TAIL_BYTES + 1)
    except (DbdictError, OSError) as error:
        return LogTail(stream, "", f"(cannot be read: {error})", False)
    tail = content[-LOG_TAIL_BYTES:]
    lines = tail.decode("utf-8", errors="replace").splitlines()
    cut = len(tail) < len(content) or len(lines) > LOG_TAIL_LINES
    return LogTail(stream, where, "\n".join(lines[-LOG_TAIL_LINES:]), cut)
