"""Sweeps: parameter values that stand for many jobs.

`lr=choice(0.1, 0.01)` and `layers=range(1, 4)` span a grid: one job per
combination of their values (the cartesian product). `lr=uniform(0, 1)`,
`lr=loguniform(1e-5, 1e-1)` and `seed=randint(0, 99)` (both ends included, as
Python's `random.randint`) are drawn at random, once per sample: `--samples N`
gives N draws, each crossed with the grid. A seed makes the draws
reproducible; without one a seed is chosen and reported.

A sweep is never held whole in memory: jobs are produced one at a time, so
a sweep of millions streams into batched inserts. To pass the text
`choice(a, b)` itself as a value, quote it: `key='choice(a, b)'`.
"""

from __future__ import annotations

import ast
import itertools
import math
import random
import re
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import convert, parse, split

GRID = ("choice", "range")
RANDOM = ("uniform", "loguniform", "randint")

Draw = Callable[[random.Random], Any]
_LOOKS_LIKE_A_SWEEP = re.compile(r"(" + "|".join(GRID + RANDOM) + r")\s*\(", flags=re.IGNORECASE)


@dataclass(frozen=True)
class Sweep:
    """Fixed parameters, grid dimensions and random dimensions; iterate for each job's params."""

    fixed: dict[str, Any]
    grid: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    draws: tuple[tuple[str, Draw], ...] = ()
    samples: int = 1
    seed: int | None = None

    @classmethod
    def parse(
        cls, params: Sequence[str], samples: int | None = None, seed: int | None = None
    ) -> Sweep:
        """Read `key=value` / `key::builder` strings, where values may be sweeps."""
        fixed, calls = sweep_calls(params)
        grid = {call.key: call.values() for call in calls if call.name in GRID}
        draws = {call.key: _draw(call) for call in calls if call.name in RANDOM}
        if draws and samples is None:
            raise UsageError(f"{next(iter(draws))} is drawn at random: give --samples N")
        if not draws and samples is not None:
            raise UsageError(
                "--samples needs a value drawn at random: uniform(a, b), "
                "loguniform(a, b) or randint(a, b)"
            )
        if samples is not None and samples < 1:
            raise UsageError(f"--samples must be at least 1, not {samples}")
        if draws and seed is None:
            seed = secrets.randbits(32)
        return cls(fixed, tuple(grid.items()), tuple(draws.items()), samples or 1, seed)

    def __len__(self) -> int:
        """How many jobs the sweep spans (duplicates among random draws included)."""
        return self.samples * math.prod(len(values) for _, values in self.grid)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """Each job's parameters (as `params.parse` gives them), one at a time."""
        rng = random.Random(self.seed)  # noqa: S311 (reproducible draws, not secrets)
        keys = [key for key, _ in self.grid]
        for _ in range(self.samples):
            drawn = {key: draw(rng) for key, draw in self.draws}
            for values in itertools.product(*(values for _, values in self.grid)):
                yield {**self.fixed, **drawn, **dict(zip(keys, values, strict=True))}


def _sweep_call(raw: str) -> tuple[str, list[Any]] | None:
    """`choice(a, b)` -> ('choice', [a, b]); None if `raw` is not a sweep.

    Text that looks like a sweep but is not one (`choice(0.1, 0.01` without
    its parenthesis, `Choice(...)`) is refused: a typo must not silently
    become one job with a string parameter. Quoted, such text is a string.
    """
    text = raw.strip()
    looks_like = _LOOKS_LIKE_A_SWEEP.match(text)
    try:
        tree = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):  # ValueError: text that is not UTF-8
        tree = None
    if looks_like is not None:
        called = looks_like.group(1)
        if tree is None:
            raise UsageError(
                f"{text!r} looks like a sweep but does not parse (a missing parenthesis or "
                f"comma?); to pass it as text, quote it: \"'{text}'\""
            )
        if called not in GRID + RANDOM:
            raise UsageError(
                f"{text!r}: did you mean {called.lower()}(...)? Sweeps are written in lower "
                f"case; to pass it as text, quote it: \"'{text}'\""
            )
    if not (
        isinstance(tree, ast.Call)
        and isinstance(tree.func, ast.Name)
        and tree.func.id in GRID + RANDOM
    ):
        return None
    name = tree.func.id
    if tree.keywords or any(isinstance(arg, ast.Starred) for arg in tree.args):
        raise UsageError(f"{name}() takes plain values, as in {name}(1, 2): {raw.strip()!r}")
    return name, [convert(ast.get_source_segment(text, arg) or "") for arg in tree.args]


@dataclass(frozen=True)
class SweepCall:
    """One swept parameter as written: `lr=loguniform(1e-4, 1e-1)` is ('lr', 'loguniform',
    (0.0001, 0.1)). A grid call has its `values()`, a random one its `bounds()`."""

    key: str
    name: str
    args: tuple[Any, ...]

    def values(self) -> tuple[Any, ...]:
        """The values of a grid call (choice, range), checked."""
        key, args = self.key, self.args
        if self.name == "choice":
            if not args:
                raise UsageError(f"{key}=choice() needs at least one value")
            return args
        if not (1 <= len(args) <= 3 and all(_is_int(arg) for arg in args)):
            raise UsageError(
                f"{key}=range(start, stop[, step]) takes 1 to 3 whole numbers; "
                "use choice(...) for other values"
            )
        if len(args) == 3 and args[2] == 0:
            raise UsageError(f"{key}=range(...) has a step of 0")
        values = tuple(range(*args))
        if not values:
            raise UsageError(f"{key}=range{args} is empty")
        return values

    def bounds(self) -> tuple[Any, Any]:
        """The lowest and highest value of a random call (uniform, loguniform, randint),
        both included, checked."""
        key, name = self.key, self.name
        if len(self.args) != 2 or not all(_is_number(arg) for arg in self.args):
            raise UsageError(f"{key}={name}(a, b) takes two numbers")
        low, high = self.args
        if low > high:
            raise UsageError(f"{key}={name}({low}, {high}): the first bound is above the second")
        if name == "loguniform" and low <= 0:
            raise UsageError(f"{key}=loguniform({low}, {high}) needs bounds above 0")
        if name == "randint" and not (_is_int(low) and _is_int(high)):
            raise UsageError(f"{key}=randint(a, b) takes two whole numbers")
        return low, high


def sweep_calls(params: Sequence[str]) -> tuple[dict[str, Any], list[SweepCall]]:
    """Split `key=value` / `key::builder` strings into the fixed parameters (as `params.parse`
    gives them) and the sweep calls, in the order given."""
    plain: list[str] = []
    calls: dict[str, SweepCall] = {}
    for string in params:
        key, separator, raw = split(string)
        call = _sweep_call(raw) if separator == "=" else None
        if call is None:
            plain.append(string)
            continue
        if key in calls:
            raise UsageError(f"parameter {key!r} is swept twice")
        calls[key] = SweepCall(key, call[0], tuple(call[1]))
    fixed = parse(*plain)
    both = sorted(fixed.keys() & calls.keys())
    if both:
        raise UsageError(f"parameter {both[0]!r} is given both as a sweep and as a value")
    return fixed, list(calls.values())


def _draw(call: SweepCall) -> Draw:
    low, high = call.bounds()
    if call.name == "uniform":
        return lambda rng: rng.uniform(low, high)
    if call.name == "loguniform":
        return lambda rng: math.exp(rng.uniform(math.log(low), math.log(high)))
    return lambda rng: rng.randint(low, high)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
