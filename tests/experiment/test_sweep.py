"""Sweeps: grids and random draws in `dbdict schedule` parameters."""

from __future__ import annotations

import math
import re

import pytest

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.sweep import Sweep


def test_choice_and_range_make_the_cartesian_grid() -> None:
    sweep = Sweep.parse(["lr=choice(0.1, 0.01)", "layers=range(1, 4)", "model=cnn"])
    jobs = list(sweep)
    assert len(sweep) == len(jobs) == 6
    assert {(job["lr"], job["layers"]) for job in jobs} == {
        (lr, layers) for lr in (0.1, 0.01) for layers in (1, 2, 3)
    }
    assert all(job["model"] == "cnn" for job in jobs)


def test_choice_values_parse_as_parameter_values_do() -> None:
    (sweep,) = [Sweep.parse(["kind=choice(cnn, 'a, b', [1, 2], None, nan)"])]
    values = [job["kind"] for job in sweep]
    assert values[:4] == ["cnn", "a, b", [1, 2], None]
    assert math.isnan(values[4])


def test_range_with_a_step_and_a_single_bound() -> None:
    assert [job["n"] for job in Sweep.parse(["n=range(10, 0, -4)"])] == [10, 6, 2]
    assert [job["n"] for job in Sweep.parse(["n=range(3)"])] == [0, 1, 2]


def test_random_draws_are_reproducible_with_a_seed_and_stay_in_bounds() -> None:
    params = [
        "lr=loguniform(1e-5, 1e-1)",
        "p=uniform(0, 1)",
        "seed=randint(1, 3)",
        "k=choice(a, b)",
    ]
    first = list(Sweep.parse(params, samples=50, seed=7))
    assert first == list(Sweep.parse(params, samples=50, seed=7))
    assert first != list(Sweep.parse(params, samples=50, seed=8))
    assert len(first) == 100, "each draw is crossed with the grid"
    assert all(1e-5 <= job["lr"] <= 1e-1 and 0 <= job["p"] <= 1 for job in first)
    assert {job["seed"] for job in first} == {1, 2, 3}, "randint includes both ends"
    assert all(isinstance(job["seed"], int) for job in first)


def test_without_a_seed_one_is_chosen_and_kept() -> None:
    sweep = Sweep.parse(["p=uniform(0, 1)"], samples=3)
    assert sweep.seed is not None
    assert list(sweep) == list(Sweep.parse(["p=uniform(0, 1)"], samples=3, seed=sweep.seed))


def test_the_sweep_is_produced_one_job_at_a_time() -> None:
    sweep = Sweep.parse(["a=range(1000)", "b=range(1000)", "c=range(1000)"])
    assert len(sweep) == 10**9
    jobs = iter(sweep)
    assert next(jobs) == {"a": 0, "b": 0, "c": 0}
    assert next(jobs) == {"a": 0, "b": 0, "c": 1}


def test_quoted_text_and_builders_are_not_sweeps() -> None:
    (job,) = list(Sweep.parse(["text='choice(a, b)'", "f::choice"]))
    assert job == {"text": "choice(a, b)", "f.__builder__": "choice"}


@pytest.mark.parametrize(
    ("params", "samples", "message"),
    [
        (["lr=uniform(0, 1)"], None, "lr is drawn at random: give --samples N"),
        (["lr=0.1"], 3, "--samples needs a value drawn at random"),
        (["lr=uniform(0, 1)"], 0, "--samples must be at least 1"),
        (["n=range(1.5, 3)"], None, "takes 1 to 3 whole numbers"),
        (["n=range(1, 3, 0)"], None, "step of 0"),
        (["n=range(3, 1)"], None, "is empty"),
        (["n=choice()"], None, "needs at least one value"),
        (["n=choice(*x)"], None, "takes plain values"),
        (["n=uniform(1)"], 2, "takes two numbers"),
        (["n=uniform(2, 1)"], 2, "first bound is above the second"),
        (["n=loguniform(0, 1)"], 2, "bounds above 0"),
        (["n=randint(0.5, 2)"], 2, "two whole numbers"),
        (["n=choice(1, 2)", "n=range(2)"], None, "swept twice"),
        (["n=choice(1, 2)", "n=3"], None, "both as a sweep and as a value"),
    ],
)
def test_malformed_sweeps_are_refused_clearly(
    params: list[str], samples: int | None, message: str
) -> None:
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("-", r"\-")):
        Sweep.parse(params, samples)


@pytest.mark.parametrize(
    ("typed", "hint"),
    [
        ("lr=choice(0.1, 0.01", "does not parse"),
        ("lr=loguniform(1e-4, 1e-1", "does not parse"),
        ("lr=Choice(0.1, 0.01)", "did you mean choice(...)"),
        ("n=RANGE(3)", "did you mean range(...)"),
        ("lr = uniform (0, 1", "does not parse"),
    ],
)
def test_text_that_looks_like_a_sweep_but_is_not_one_is_refused(typed: str, hint: str) -> None:
    with pytest.raises(UsageError, match=re.escape(hint)) as refused:
        Sweep.parse([typed], samples=2)
    assert "quote it" in str(refused.value)


@pytest.mark.parametrize(
    "typed",
    ["note='choice(0.1, 0.01'", 'note="Choice(a, b)"', "f=choices", "g=uniformity(1)"],
)
def test_quoted_or_merely_similar_text_stays_a_string(typed: str) -> None:
    (params,) = list(Sweep.parse([typed]))
    assert isinstance(next(iter(params.values())), str)
