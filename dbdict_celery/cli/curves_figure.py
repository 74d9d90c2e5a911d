"""Learning curves, for `dbdict plot --curves KEY`: one line per job, its value against the step.

A sweep has hundreds of jobs of thousands of steps: every curve is one segment
of a single LineCollection (one artist, drawn in one pass, not one per job),
and the lines grow fainter as jobs grow, so that where many jobs agree reads
darker and 500 of them stay readable. The best job (by its last value) is
drawn on top and named. With `aggregate`, the jobs of each hue value become
their mean and a band of one standard deviation, step by step.

A NaN breaks its line (a diverged stretch shows as a gap). Infinities cannot
be drawn and are left out, as are values at or below 0 on a log axis; a note
says how many.

matplotlib and numpy (which matplotlib needs) are imported only when a figure
is drawn, after `new_figure` checked that matplotlib is there.
"""

from __future__ import annotations

import itertools
import math
from array import array
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dbdict_celery.cli.figures import group_of, log_scale, new_figure
from dbdict_celery.errors import UsageError
from dbdict_celery.store.job import Job, value_of

if TYPE_CHECKING:  # annotations only: `dbdict --help` imports no SQLAlchemy
    import numpy as np
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

    from dbdict_celery.store.metrics import CurveColumns


BEST = ("min", "max")
MOST_ALPHA = 0.9  # a few jobs' lines
LEAST_ALPHA = 0.04  # thousands of jobs' lines
ALPHA_SCALE = 3.0  # in between, lines are drawn at ALPHA_SCALE / sqrt(jobs)
THIN_FROM = 20  # jobs from which lines are drawn thin
BAND_ALPHA = 0.25
MOST_IN_LEGEND = 20
CATEGORICAL = 10  # hue values that get the ten distinct colours C0-C9; more get a colormap
UNSET = "0.6"  # grey: jobs without a number for a numeric hue


@dataclass(frozen=True)
class Curve:
    """One job's curve as drawn: steps and values, the points that cannot be drawn left out."""

    job: Job
    steps: NDArray[np.float64]
    values: NDArray[np.float64]


@dataclass(frozen=True)
class CurvesPlot:
    """The figure, the job drawn as the best (None when every curve ends on NaN), and what
    was left out of the drawing, in lines to tell the user."""

    figure: Figure
    best: Curve | None
    notes: list[str]


def curves_plot(
    jobs: Sequence[Job],
    points: CurveColumns,
    key: str,
    table: str,
    hue: str | None = None,
    log_y: bool = False,
    aggregate: bool = False,
    best: str = "min",
) -> CurvesPlot:
    """Draw the `key` curve of each of `jobs` from `points` (theirs, of that key, by job and
    step, as `JobStore.curve_columns` gives them): coloured by `hue`, a log value axis
    with `log_y`, the mean and band of each hue value with `aggregate`, the job whose
    last value is the `best` ("min" or "max") on top."""
    if best not in BEST:
        raise UsageError(f"--best is min or max, not {best!r}")
    ids, steps, values = points.job_ids, points.steps, points.values
    if not ids:
        raise UsageError(
            f"no job of the {len(jobs)} chosen reported {key!r}: see the curves a job "
            "reported with dbdict show ID"
        )
    figure = new_figure(8, 5)
    drawn, notes = _curves(jobs, ids, steps, values, log_y)
    if not any(len(curve.steps) for curve in drawn):
        raise UsageError(f"no point of {key!r} can be drawn: {'; '.join(notes)}")
    axes = figure.subplots()
    if log_y:
        axes.set_yscale("log")
    groups = _groups(drawn, hue)
    colours, colorbar = _colours(groups, hue)
    if aggregate:
        handles = _bands(axes, drawn, groups, colours, hue, log_y)
    else:
        _lines(axes, drawn, [colours[groups[curve.job.id]] for curve in drawn])
        handles = _group_handles(groups, colours, hue, colorbar is not None)
    handles = _shortened(handles, MOST_IN_LEGEND - 1)  # room for the best job's entry
    chosen = _best(drawn, best)
    if chosen is not None:
        handles.append(_draw_best(axes, chosen, colours[groups[chosen.job.id]], key, best))
    if colorbar is not None:
        figure.colorbar(colorbar, ax=axes, label=hue)
    if handles:
        axes.legend(handles=handles, loc="best", fontsize="small")
    axes.set_xlabel("step")
    axes.set_ylabel(key)
    how = f"; mean ± 1 std{f' per {hue}' if hue else ''}" if aggregate else ""
    axes.set_title(f"{key} by step: table {table}, {len(drawn)} of {len(jobs)} jobs{how}")
    axes.grid(True, which="both", alpha=0.3)
    return CurvesPlot(figure, chosen, notes)


def _curves(
    jobs: Sequence[Job], ids: array[int], steps: array[int], values: array[float], log_y: bool
) -> tuple[list[Curve], list[str]]:
    """Each job's curve (the points come by job, then step), without the points a line
    cannot reach; and notes saying how many were left out."""
    import numpy as np

    job_ids = np.frombuffer(ids, dtype=np.int64)
    at = np.frombuffer(steps, dtype=np.int64).astype(np.float64)
    value = np.frombuffer(values, dtype=np.float64)
    infinite = np.isinf(value)
    low = (value <= 0) & ~infinite if log_y else np.zeros_like(infinite)  # NaN is neither
    kept = ~(infinite | low)
    starts = [0, *(np.flatnonzero(np.diff(job_ids)) + 1).tolist(), len(job_ids)]
    by_id = {job.id: job for job in jobs}
    drawn = []
    for lo, hi in itertools.pairwise(starts):
        keep = kept[lo:hi]
        drawn.append(Curve(by_id[int(job_ids[lo])], at[lo:hi][keep], value[lo:hi][keep]))
    notes = []
    for mask, what, where in (
        (infinite, "infinite", "a line"),
        (low, "non-positive", "a log axis"),
    ):
        if mask.any():
            left_out = _many(int(mask.sum()), f"{what} value")
            touched = _many(len(np.unique(job_ids[mask])), "job")
            notes.append(f"left out {left_out} ({touched}): {where} cannot show them")
    return drawn, notes


def _groups(drawn: list[Curve], hue: str | None) -> dict[int, Any]:
    """Each job's hue group: its value of `hue` (None for none, or NaN); None without hue."""
    if hue is None:
        return dict.fromkeys((curve.job.id for curve in drawn), None)
    groups = {}
    for curve in drawn:
        value = group_of(value_of(curve.job, hue))
        groups[curve.job.id] = None if isinstance(value, float) and math.isnan(value) else value
    return groups


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _numeric(values: Iterable[Any]) -> bool:
    """Whether hue groups are numbers (None, for jobs without one, aside)."""
    present = [value for value in values if value is not None]
    return bool(present) and all(_is_number(value) for value in present)


def _order(group: Any) -> tuple[bool, bool, float, str]:
    """Hue groups in order: numbers by value, then the rest by how they print, None last."""
    number = _is_number(group)
    return (group is None, not number, float(group) if number else 0.0, str(group))


def _colours(groups: dict[int, Any], hue: str | None) -> tuple[dict[Any, Any], Any]:
    """A colour per hue group, and the ScalarMappable of a colorbar when the groups are
    numbers (a colormap, logarithmic across two decades or more; grey for jobs without
    one); categories get distinct colours, a legend entry each."""
    from matplotlib import colormaps
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import LogNorm, Normalize

    distinct = sorted(set(groups.values()), key=_order)
    if hue is None:
        return {None: "C0"}, None
    if _numeric(distinct):
        numbers = [float(group) for group in distinct if group is not None]
        span = (min(numbers), max(numbers))
        norm = LogNorm(*span) if log_scale(numbers) else Normalize(*span)
        cmap = colormaps["viridis"]
        colours = {group: cmap(norm(float(group))) for group in distinct if group is not None}
        return {**colours, None: UNSET}, ScalarMappable(norm=norm, cmap=cmap)
    if len(distinct) <= CATEGORICAL:
        return {group: f"C{index}" for index, group in enumerate(distinct)}, None
    turbo = colormaps["turbo"]
    last = len(distinct) - 1
    return {group: turbo(index / last) for index, group in enumerate(distinct)}, None


def _lines(axes: Axes, drawn: list[Curve], colours: list[Any]) -> None:
    """Every curve in one LineCollection, fainter and thinner the more there are."""
    import numpy as np
    from matplotlib.collections import LineCollection

    shown = [
        (curve, colour) for curve, colour in zip(drawn, colours, strict=True) if len(curve.steps)
    ]
    alpha = min(MOST_ALPHA, max(LEAST_ALPHA, ALPHA_SCALE / math.sqrt(len(shown))))
    collection = LineCollection(
        [np.column_stack([curve.steps, curve.values]) for curve, _ in shown],
        colors=[colour for _, colour in shown],
        linewidths=1.5 if len(shown) < THIN_FROM else 0.8,
        alpha=alpha,
    )
    axes.add_collection(collection)
    axes.autoscale_view()


def _bands(
    axes: Axes,
    drawn: list[Curve],
    groups: dict[int, Any],
    colours: dict[Any, Any],
    hue: str | None,
    log_y: bool,
) -> list[Artist]:
    """For each hue group, the mean of its jobs at each step and a band of ± one standard
    deviation (NaN points left out; on a log axis the band stops at the group's smallest
    value rather than at or below 0); their mean lines, for the legend."""
    import numpy as np

    handles: list[Artist] = []
    for group, colour in colours.items():
        members = [curve for curve in drawn if groups[curve.job.id] == group]
        steps = np.concatenate([curve.steps for curve in members] or [np.empty(0)])
        values = np.concatenate([curve.values for curve in members] or [np.empty(0)])
        known = ~np.isnan(values)
        steps, values = steps[known], values[known]
        if not len(values):
            continue
        at, where, counts = np.unique(steps, return_inverse=True, return_counts=True)
        mean = np.bincount(where, weights=values) / counts
        std = np.sqrt(np.bincount(where, weights=(values - mean[where]) ** 2) / counts)
        lower = np.maximum(mean - std, values.min()) if log_y else mean - std
        axes.fill_between(at, lower, mean + std, color=colour, alpha=BAND_ALPHA, linewidth=0)
        name = "mean ± 1 std" if hue is None else f"{hue}={group}"
        label = f"{name} ({_many(len(members), 'job')})"
        (line,) = axes.plot(at, mean, color=colour, linewidth=1.8, label=label)
        handles.append(line)
    return handles


def _group_handles(
    groups: dict[int, Any], colours: dict[Any, Any], hue: str | None, colorbar: bool
) -> list[Artist]:
    """Legend entries for the lines' colours: one per category, with its number of jobs;
    beside a colorbar, one for the jobs without a number, if any."""
    from matplotlib.lines import Line2D

    counts = Counter(groups.values())
    if hue is None:
        return []
    if colorbar:
        unset = f"no {hue} ({_many(counts[None], 'job')})"
        return [Line2D([], [], color=UNSET, label=unset)] if counts[None] else []
    return [
        Line2D([], [], color=colour, label=f"{hue}={group} ({_many(counts[group], 'job')})")
        for group, colour in colours.items()
    ]


def _best(drawn: list[Curve], best: str) -> Curve | None:
    """The curve whose last point is lowest (min) or highest (max); a curve ending on NaN
    (it diverged) is never the best. Ties go to the lowest job id."""
    ending = [curve for curve in drawn if len(curve.values) and not math.isnan(curve.values[-1])]
    pick = min if best == "min" else max
    return pick(ending, key=lambda curve: float(curve.values[-1]), default=None)


def _draw_best(axes: Axes, curve: Curve, colour: Any, key: str, best: str) -> Artist:
    """The best curve above the others, outlined, its end named; its line, for the legend."""
    from matplotlib.patheffects import withStroke

    (line,) = axes.plot(
        curve.steps,
        curve.values,
        color=colour,
        linewidth=1.5,
        zorder=5,
        path_effects=[withStroke(linewidth=3, foreground="black")],
        label=f"best ({best} last {key}): job {curve.job.id}",
    )
    step, value = float(curve.steps[-1]), float(curve.values[-1])
    axes.annotate(f"job {curve.job.id}: {value:.4g}", (step, value), xytext=(-4, 6),
                  textcoords="offset points", ha="right", fontsize="small", zorder=6,
                  bbox={"boxstyle": "round", "facecolor": "white", "alpha": 0.8})  # fmt: skip
    return line


def _shortened(handles: list[Artist], most: int) -> list[Artist]:
    """At most `most` legend entries, the last saying how many more there were."""
    from matplotlib.lines import Line2D

    if len(handles) <= most:
        return handles
    more = Line2D([], [], linestyle="", label=f"(+{len(handles) - most + 1} more)")
    return [*handles[: most - 1], more]


def _many(count: int, noun: str) -> str:
    """`count` and the noun, plural when it is not 1: "1 job", "3 jobs"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
