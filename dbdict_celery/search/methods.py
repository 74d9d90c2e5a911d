"""The samplers and pruners a study may use, by name: Optuna's own, checked against the
search space and the objective before anything runs.

The names are read by `dbdict --help`, which must not pay for Optuna (and numpy): it is
imported by the functions that make a sampler or a pruner."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from dbdict_celery.errors import DbdictError, UsageError

if TYPE_CHECKING:
    import optuna

    from dbdict_celery.search.objective import Objective
    from dbdict_celery.search.space import Space

SAMPLERS = ("tpe", "cmaes", "gp", "random", "qmc", "nsga2", "grid")
PRUNERS = ("none", "median", "percentile", "asha", "hyperband")
SINGLE_OBJECTIVE_SAMPLERS = ("cmaes",)
NEEDS = {"cmaes": ("cmaes",), "gp": ("torch", "scipy")}  # packages Optuna imports for them


def sampler(
    name: str, space: Space, objective: Objective, seed: int
) -> optuna.samplers.BaseSampler:
    """The sampler `name`, seeded; a UsageError if it cannot search this space for this
    objective."""
    if name not in SAMPLERS:
        raise UsageError(f"unknown sampler {name!r}: choose one of {', '.join(SAMPLERS)}")
    if objective.multi and name in SINGLE_OBJECTIVE_SAMPLERS:
        raise UsageError(
            f"the {name} sampler optimizes one objective, and {objective} has "
            f"{len(objective.keys)}: use nsga2, tpe, random or qmc"
        )
    if name == "cmaes" and not space.numeric():
        raise UsageError(
            "the cmaes sampler searches ranges of numbers, and every parameter here is a "
            "choice(): use tpe, random or grid"
        )
    missing = [package for package in NEEDS.get(name, ()) if not importlib.util.find_spec(package)]
    if missing:
        raise DbdictError(
            f"the {name} sampler needs {' and '.join(missing)}: pip install {' '.join(missing)}"
        )
    import optuna

    samplers = optuna.samplers
    if name == "tpe":
        return samplers.TPESampler(seed=seed, constant_liar=True)  # trials in flight count
    if name == "cmaes":
        return samplers.CmaEsSampler(seed=seed)
    if name == "gp":
        return samplers.GPSampler(seed=seed)
    if name == "qmc":
        return samplers.QMCSampler(seed=seed)
    if name == "nsga2":
        return samplers.NSGAIISampler(seed=seed)
    if name == "grid":
        return samplers.GridSampler(space.grid(), seed=seed)
    return samplers.RandomSampler(seed=seed)


def pruner(name: str, objective: Objective) -> optuna.pruners.BasePruner:
    """The pruner `name`; a UsageError for a pruner with several objectives (Optuna prunes
    on one reported value)."""
    if name not in PRUNERS:
        raise UsageError(f"unknown pruner {name!r}: choose one of {', '.join(PRUNERS)}")
    if name != "none" and objective.multi:
        raise UsageError(f"--pruner {name} stops trials on one objective; {objective} has several")
    import optuna

    pruners = optuna.pruners
    if name == "median":
        return pruners.MedianPruner()
    if name == "percentile":
        return pruners.PercentilePruner(25.0)
    if name == "asha":
        return pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return pruners.HyperbandPruner()
    return pruners.NopPruner()
