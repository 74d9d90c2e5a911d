"""Line charts as inline SVG, computed here: no charting library, nothing for the browser
to load.

A curve of ten thousand steps is drawn from at most `MAX_POINTS` points: each slice of
steps keeps its lowest and highest value, so a spike still shows. A NaN or an infinity
breaks the line rather than bending the axes.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

WIDTH, HEIGHT = 720, 280
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 12, 32
MAX_POINTS = 1200  # per line: more than the chart has pixels across
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
TICKS = 5


@dataclass(frozen=True)
class Line:
    """One drawn series: its name, colour, SVG path, and how many points it was made from;
    a scatter's points are `dots` (pixel positions) and its path is empty."""

    name: str
    colour: str
    path: str
    points: int
    dots: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True)
class Tick:
    """An axis label and where it goes (pixels along its axis)."""

    at: float
    label: str


@dataclass(frozen=True)
class Chart:
    """What the chart template draws: lines, ticks, the plot area's size, and the legend
    (a line's name and colour each, or one per group of lines)."""

    lines: list[Line]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    legend: list[tuple[str, str]] | None = None  # None: each line's name and colour
    width: int = WIDTH
    height: int = HEIGHT
    left: int = MARGIN_LEFT
    top: int = MARGIN_TOP
    right: int = WIDTH - MARGIN_RIGHT
    bottom: int = HEIGHT - MARGIN_BOTTOM

    @property
    def empty(self) -> bool:
        return not any(line.points for line in self.lines)


Series = Sequence[tuple[float, float]]  # (x, y) points in x order


def line_chart(
    series: Mapping[str, Series],
    scatter: frozenset[str] = frozenset(),
    groups: Mapping[str, str] | None = None,
    most: int = MAX_POINTS,
) -> Chart:
    """A chart of each named series on shared axes, each of at most about `most` points;
    coloured in turn, or by group when `groups` gives each series' group (many curves of
    a sweep, coloured by a parameter); those named in `scatter` drawn as dots."""
    thinned = {name: thin(line, most) for name, line in series.items()}
    finite = [(x, y) for points in thinned.values() for x, y in points if math.isfinite(y)]
    if not finite:
        return Chart([Line(name, COLOURS[0], "", 0) for name in series], [], [])
    x_low, x_high = _span(x for x, _ in finite)
    y_low, y_high = _span(y for _, y in finite)
    left, right = MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    top, bottom = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM

    def px(x: float) -> float:
        return left + (x - x_low) / (x_high - x_low) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y_low) / (y_high - y_low) * (bottom - top)

    order = list(dict.fromkeys((groups or {}).get(name, name) for name in thinned))
    colour_of = {group: COLOURS[n % len(COLOURS)] for n, group in enumerate(order)}
    lines = []
    for name, points in thinned.items():
        colour = colour_of[(groups or {}).get(name, name)]
        if name in scatter:
            dots = tuple((round(px(x), 1), round(py(y), 1)) for x, y in points if math.isfinite(y))
            lines.append(Line(name, colour, "", len(points), dots))
            continue
        path, pen_down = [], False
        for x, y in points:
            if not math.isfinite(y):
                pen_down = False
                continue
            path.append(f"{'L' if pen_down else 'M'}{px(x):.1f} {py(y):.1f}")
            pen_down = True
        lines.append(Line(name, colour, " ".join(path), len(points)))
    x_ticks = [Tick(round(px(value), 1), _label(value)) for value in _ticks(x_low, x_high)]
    y_ticks = [Tick(round(py(value), 1), _label(value)) for value in _ticks(y_low, y_high)]
    legend = [(group, colour_of[group]) for group in order] if groups is not None else None
    return Chart(lines, x_ticks, y_ticks, legend=legend)


def thin(points: Series, limit: int = MAX_POINTS) -> Series:
    """At most about `limit` points of a series: each slice keeps its lowest and highest
    value (in x order), and every point that is not finite (it breaks the line)."""
    if len(points) <= limit:
        return points
    width = math.ceil(len(points) / (limit // 2))
    kept: list[tuple[float, float]] = []
    for start in range(0, len(points), width):
        chunk = points[start : start + width]
        finite = [point for point in chunk if math.isfinite(point[1])]
        broken = [point for point in chunk if not math.isfinite(point[1])]
        extremes = (
            {min(finite, key=lambda p: p[1]), max(finite, key=lambda p: p[1])} if finite else set()
        )
        kept.extend(sorted([*extremes, *broken[:1]]))
    return kept


def _span(values: Iterable[float]) -> tuple[float, float]:
    """The lowest and highest of `values`, never equal (a flat line sits mid-chart)."""
    chosen = list(values)
    low, high = min(chosen), max(chosen)
    if low == high:
        pad = abs(low) * 0.05 or 1.0
        return low - pad, high + pad
    return low, high


def _ticks(low: float, high: float) -> list[float]:
    """About TICKS round values between low and high."""
    raw = (high - low) / TICKS
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.ceil(low / step) * step
    count = int((high - first) / step + 1e-9) + 1
    return [first + n * step for n in range(count)]


def _label(value: float) -> str:
    """A tick's label: short, `-0` as `0`."""
    if value == 0:
        return "0"
    return f"{value:.4g}"
