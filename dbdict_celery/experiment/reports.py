"""Metric values an experiment reported since its last save, kept in memory until it saves.

`channel.report(step, loss=0.31)` is meant to be called at every step, so it
only checks its arguments and appends to a list. The values reach the job's
files and table with the next save (and the save that ends the run), in the
same write as the state: a run that dies loses only what it reported since
its last save, and the run that resumes from that save reports it again, so
every (step, key) is kept exactly once.

Each key is its own curve, in step order. A report for a step at or below one
already reported for that key means the experiment went back (it restarted
from scratch, or from an earlier checkpoint): the curve is cut at that step
and goes on from the new value, here and in whatever was already written.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

LONGEST_KEY = 200  # characters in a metric's name


@dataclass
class Curve:
    """One key's reported points since the last save, steps strictly increasing."""

    steps: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)

    def add(self, step: int, value: float) -> None:
        """Append a point; one at or before the last step cuts the curve there first."""
        if self.steps and step <= self.steps[-1]:
            cut = bisect.bisect_left(self.steps, step)
            del self.steps[cut:], self.values[cut:]
        self.steps.append(step)
        self.values.append(value)


class Reports:
    """The curves reported since the last save, by key."""

    def __init__(self) -> None:
        self.curves: dict[str, Curve] = {}

    def add(self, step: Any, values: Mapping[str, Any]) -> None:
        """Record `values` at `step`; a TypeError or ValueError naming what is wrong with
        either, and then nothing of this report is kept."""
        step = checked_step(step)
        points = [(checked_key(key), checked_value(key, value)) for key, value in values.items()]
        for key, value in points:
            curve = self.curves.get(key)
            if curve is None:
                curve = self.curves[key] = Curve()
            curve.add(step, value)

    def __bool__(self) -> bool:
        return bool(self.curves)

    def __iter__(self) -> Iterator[tuple[str, Curve]]:
        return iter(self.curves.items())

    def take(self) -> Reports:
        """What was reported so far, leaving this buffer empty."""
        taken = Reports()
        taken.curves, self.curves = self.curves, {}
        return taken

    def to_json(self) -> dict[str, list[list[Any]]]:
        """Plain values: `{key: [steps, values]}` (NaN and infinities as floats)."""
        return {key: [curve.steps, curve.values] for key, curve in self.curves.items()}

    @classmethod
    def from_json(cls, curves: Mapping[str, list[list[Any]]]) -> Reports:
        """The reports `to_json` gave."""
        reports = cls()
        for key, (steps, values) in curves.items():
            reports.curves[key] = Curve(list(steps), [float(value) for value in values])
        return reports


def checked_step(step: Any) -> int:
    """A report's step as an int: a non-negative integer (numpy's too), never a bool."""
    if isinstance(step, bool):
        raise TypeError(f"a report's step must be an integer, not {step!r}")
    try:
        number = operator.index(step)
    except TypeError:
        raise TypeError(
            f"a report's step must be an integer, not {type(step).__name__} {step!r}"
        ) from None
    if number < 0:
        raise ValueError(f"a report's step must be 0 or more, not {number}")
    return number


def checked_key(key: Any) -> str:
    """A metric's name: a non-empty string of at most LONGEST_KEY characters."""
    if not isinstance(key, str) or not key or len(key) > LONGEST_KEY:
        raise ValueError(f"a metric's name must be 1 to {LONGEST_KEY} characters, not {key!r}")
    return key


def checked_value(key: str, value: Any) -> float:
    """A reported value as a float: any real number (NaN and infinities too), a numpy or
    torch scalar included; never a string or a bool."""
    if isinstance(value, (str, bytes, bool)):
        raise TypeError(f"metric {key!r} must be a number, not {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, RuntimeError):  # a tensor of many values: RuntimeError
        raise TypeError(
            f"metric {key!r} must be a number, not {type(value).__name__} {value!r}"
        ) from None
    return number
