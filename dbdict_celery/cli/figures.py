"""Figures of a table's jobs, for `dbdict plot`: a result against a parameter, and a timeline
of when each run ran on which worker.

matplotlib is an extra (`pip install 'dbdict-celery[plot]'`): it is imported only
here and in `curves_figure.py` (the learning curves), when a figure is drawn, and
drawn without a display (no pyplot, no GUI).
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import RUNNING, Attempt, AttemptOutcome
from dbdict_celery.store.job import Job, utc, value_of

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = (".png", ".svg", ".pdf")
MARKERS = {
    Status.DONE: "o",
    Status.RUNNING: "^",
    Status.START: "s",
    Status.FAILED: "X",
    Status.CANCELLED: "v",
    Status.PRUNED: "D",
}
OUTCOME_COLOURS = {
    AttemptOutcome.DONE.value: "tab:green",
    RUNNING: "tab:blue",
    AttemptOutcome.INCOMPLETE.value: "tab:gray",
    AttemptOutcome.FAILED.value: "tab:red",
    AttemptOutcome.CANCELLED.value: "tab:orange",
    AttemptOutcome.PRUNED.value: "tab:brown",
    AttemptOutcome.LOST.value: "tab:purple",
    AttemptOutcome.GIVEN_BACK.value: "tab:olive",
}
MIN_BAR = timedelta(milliseconds=50)  # a run too short to see still gets a sliver
DECADES_FOR_LOG = 2  # values spanning this many powers of ten get a log axis


def new_figure(width: float, height: float) -> Figure:
    """A blank figure; the first import of matplotlib in every drawing, so that a missing
    extra is told in one line (exit 1) before any other matplotlib import could fail.
    Its INFO lines (a font cache built on first use) are not the command's to print."""
    logging.getLogger("matplotlib").setLevel(logging.WARNING)
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise DbdictError("plot needs matplotlib: pip install 'dbdict-celery[plot]'") from None
    return Figure(figsize=(width, height), layout="constrained")


def save(figure: Figure, output: str) -> None:
    """Write the figure as PNG, SVG or PDF, chosen by the file's suffix."""
    if not output.lower().endswith(FORMATS):
        raise UsageError(f"cannot tell the format of {output!r}: end it with .png, .svg or .pdf")
    try:
        figure.savefig(output, dpi=150)
    except OSError as error:
        raise DbdictError(f"cannot write {output}: {error.strerror or error}") from None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def log_scale(values: Sequence[float]) -> bool:
    """Whether the values (all positive) span DECADES_FOR_LOG powers of ten or more: a log
    axis (or colour scale) spreads them evenly."""
    positive = [value for value in values if value > 0]
    return (
        len(positive) == len(values) > 1
        and math.log10(max(positive) / min(positive)) >= DECADES_FOR_LOG
    )


def sweep(jobs: Sequence[Job], x: str, y: str, hue: str | None, table: str) -> Figure:
    """`y` against `x`, one marker per job (its shape: the job's status), one colour per
    value of `hue`, and a line through the mean over the DONE jobs at each `x` (seeds).

    Jobs without a number for `x` or `y` (not finished yet, or diverged) are left out.
    """
    points = [
        (xv, yv, group_of(value_of(job, hue)) if hue else None, job.status)
        for job in jobs
        if (xv := _number(value_of(job, x))) is not None
        and (yv := _number(value_of(job, y))) is not None
    ]
    if not points:
        raise UsageError(
            f"no job has numbers for both {x!r} and {y!r} (of {len(jobs)} jobs): check the "
            "names with dbdict list, or wait for results"
        )
    figure = new_figure(7, 4.5)
    axes = figure.subplots()
    groups: dict[Any, list[tuple[float, float, Status]]] = defaultdict(list)
    for xv, yv, group, status in points:
        groups[group].append((xv, yv, status))
    for index, (group, members) in enumerate(sorted(groups.items(), key=lambda item: str(item[0]))):
        colour = f"C{index % 10}"
        for status in Status:
            xs = [xv for xv, _, s in members if s is status]
            ys = [yv for _, yv, s in members if s is status]
            if xs:
                axes.scatter(xs, ys, marker=MARKERS[status], color=colour, alpha=0.8)
        means = _means([(xv, yv) for xv, yv, s in members if s is Status.DONE])
        label = f"{hue}={group}" if hue else f"mean of DONE {y}"
        if means:
            axes.plot(*zip(*means, strict=True), color=colour, linewidth=1.5, label=label)
    if log_scale([point[0] for point in points]):
        axes.set_xscale("log")
    if log_scale([point[1] for point in points]):
        axes.set_yscale("log")
    axes.set_xlabel(x)
    axes.set_ylabel(y)
    axes.set_title(f"{y} against {x}: table {table}, {len(points)} of {len(jobs)} jobs")
    axes.grid(True, which="both", alpha=0.3)
    _legends(axes, {status for *_, status in points}, bool(hue) or any(
        status is Status.DONE for *_, status in points))  # fmt: skip
    return figure


def group_of(value: Any) -> Any:
    """A hue value as a group: lists and dicts (unhashable) by how they print."""
    return value if isinstance(value, str | int | float | bool | type(None)) else repr(value)


def _means(pairs: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    by_x: dict[float, list[float]] = defaultdict(list)
    for xv, yv in pairs:
        by_x[xv].append(yv)
    return [(xv, statistics.fmean(by_x[xv])) for xv in sorted(by_x)]


def _legends(axes: Any, statuses: set[Status], lines: bool) -> None:
    """Two legends: the colours (groups, or the mean line) and the marker shapes (statuses)."""
    from matplotlib.lines import Line2D

    if lines:
        axes.add_artist(axes.legend(loc="upper left", fontsize="small", title=None))
    shapes = [
        Line2D([], [], linestyle="", marker=MARKERS[status], color="black", label=status.name)
        for status in Status
        if status in statuses
    ]
    axes.legend(handles=shapes, loc="upper right", fontsize="small", title="status")


@dataclass(frozen=True)
class _Span:
    """One run on the timeline: where it ran, when, and how it ended."""

    lane: tuple[str, int]  # (host, pid)
    start: datetime
    end: datetime
    outcome: str


def timeline(jobs: Sequence[Job], history: dict[int, list[Attempt]], table: str) -> Figure:
    """When every run of the jobs ran (`history`: their attempts), one lane per worker
    process (host:pid), coloured by how each ended: preemptions, lost runs, stragglers and
    idle workers show at a glance. A job that ran before its table kept history shows its
    last run."""
    now = datetime.now(timezone.utc)
    spans = [span for job in jobs for span in _spans(job, history.get(job.id, []), now)]
    if not spans:
        raise UsageError(f"no job of the {len(jobs)} chosen has run yet: nothing to draw")
    lanes = sorted({span.lane for span in spans})
    lane_of = {lane: index for index, lane in enumerate(lanes)}
    figure = new_figure(9, max(2.5, 0.4 * len(lanes) + 1.5))
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.patches import Patch

    axes: Any = figure.subplots()  # its date units take datetimes; the stubs say floats
    for span in spans:
        width = max(span.end - span.start, MIN_BAR)
        axes.barh(lane_of[span.lane], width, left=span.start, height=0.6,
                  color=OUTCOME_COLOURS[span.outcome], edgecolor="black",
                  linewidth=0.3)  # fmt: skip
    axes.set_yticks(range(len(lanes)), [f"{host}:{pid}" for host, pid in lanes])
    axes.invert_yaxis()
    locator = AutoDateLocator()  # type: ignore[no-untyped-call]
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))  # type: ignore[no-untyped-call]
    axes.set_xlabel("time (UTC)")
    axes.set_ylabel("worker (host:pid)")
    ran = len({job.id for job in jobs if job.started_at is not None or history.get(job.id)})
    axes.set_title(f"when each run ran: table {table}, {len(spans)} runs of {ran} jobs")
    axes.grid(True, axis="x", alpha=0.3)
    seen = {span.outcome for span in spans}
    axes.legend(handles=[Patch(color=colour, label=outcome) for outcome, colour
                         in OUTCOME_COLOURS.items() if outcome in seen],
                loc="upper right", fontsize="small")  # fmt: skip
    return figure


def _end(attempt: Attempt, now: datetime) -> datetime:
    """A run's end: now while it goes on; a sliver after its start when its end is unknown."""
    if attempt.finished_at is not None:
        return attempt.finished_at
    return now if attempt.outcome is None else attempt.started_at


def _spans(job: Job, attempts: list[Attempt], now: datetime) -> list[_Span]:
    if attempts:
        return [
            _Span((a.host or "", a.pid or 0), a.started_at, _end(a, now), a.ended_as)
            for a in attempts
        ]
    if job.started_at is None or not job.host:
        return []
    end = now if job.status is Status.RUNNING else job.finished_at or job.heartbeat_at or now
    outcome = RUNNING if job.status is Status.RUNNING else AttemptOutcome.of(job.status).value
    return [_Span((job.host, job.pid or 0), utc(job.started_at), utc(end), outcome)]
