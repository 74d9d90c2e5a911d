"""The search space of a study: `schedule`'s sweep calls as Optuna distributions.

`choice(a, b)` is categorical, `range(a, b[, s])` and `randint(a, b)` are integers
(stepped, both ends included), `uniform(a, b)` and `loguniform(a, b)` are floats
(on a log scale for the second). Other parameters are fixed: every trial gets them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import expand, flatten
from dbdict_celery.experiment.sweep import SweepCall, sweep_calls

CATEGORICAL_TYPES = (type(None), bool, int, float, str)


@dataclass(frozen=True)
class Space:
    """The fixed parameters of every trial (flattened) and the distribution of each swept one."""

    fixed: dict[str, Any]
    distributions: dict[str, BaseDistribution]

    @classmethod
    def parse(cls, params: Sequence[str]) -> Space:
        """Read `schedule`'s `key=value` strings; at least one must be a sweep call."""
        fixed, calls = sweep_calls(params)
        if not calls:
            raise UsageError(
                "nothing to search: give at least one parameter as a sweep, e.g. "
                "lr=loguniform(1e-4, 1e-1) or layers=choice(2, 3, 4)"
            )
        return cls(flatten(expand(fixed)), {call.key: _distribution(call) for call in calls})

    def params(self, suggested: dict[str, Any]) -> dict[str, Any]:
        """A trial's parameters as its row keeps them: the fixed ones and those suggested."""
        return flatten(expand({**self.fixed, **suggested}))

    def suggested(self, params: dict[str, Any]) -> dict[str, Any] | None:
        """The swept values of a job's parameters, if the job belongs to this space: the same
        fixed values, and each swept value one its distribution can give. Else None."""
        keys = self.fixed.keys() | self.distributions.keys()
        if params.keys() != keys or any(params[k] != v for k, v in self.fixed.items()):
            return None
        values = {key: params[key] for key in self.distributions}
        if all(_gives(d, values[key]) for key, d in self.distributions.items()):
            return values
        return None

    def numeric(self) -> bool:
        """Whether any swept parameter is a number range (what CMA-ES can search)."""
        return any(not isinstance(d, CategoricalDistribution) for d in self.distributions.values())

    def grid(self) -> dict[str, list[Any]]:
        """Every value of each swept parameter, for the grid sampler: choice() and range()
        only."""
        grid: dict[str, list[Any]] = {}
        for key, distribution in self.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                grid[key] = list(distribution.choices)
            elif isinstance(distribution, IntDistribution) and not distribution.log:
                grid[key] = list(range(distribution.low, distribution.high + 1, distribution.step))
            else:
                raise UsageError(
                    f"the grid sampler takes choice() or range() values only: {key} is drawn "
                    "from a range of numbers"
                )
        return grid


def _gives(distribution: BaseDistribution, value: Any) -> bool:
    """Whether `distribution` could have suggested `value`."""
    if isinstance(distribution, CategoricalDistribution):
        return any(type(value) is type(c) and value == c for c in distribution.choices)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not distribution.low <= value <= distribution.high:  # type: ignore[attr-defined]
        return False
    if isinstance(distribution, IntDistribution):
        return isinstance(value, int) and (value - distribution.low) % distribution.step == 0
    return True


def _distribution(call: SweepCall) -> BaseDistribution:
    if call.name == "choice":
        values = call.values()
        for value in values:
            if not isinstance(value, CATEGORICAL_TYPES):
                raise UsageError(
                    f"{call.key}=choice(...): {value!r} cannot be searched over; choices are "
                    "numbers, text, True/False or None"
                )
        return CategoricalDistribution(values)
    if call.name == "range":
        values = call.values()
        step = abs(values[1] - values[0]) if len(values) > 1 else 1
        return IntDistribution(min(values), max(values), step=step)
    low, high = call.bounds()
    if call.name == "randint":
        return IntDistribution(low, high)
    return FloatDistribution(float(low), float(high), log=call.name == "loguniform")
