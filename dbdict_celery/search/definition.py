"""A study as its command defines it: what it runs, searches, optimizes, and how.

The definition is recorded beside the study's trials (plain JSON, the parameters as they
were typed), so that running the command again finds the same study, and a different
command under the same name is refused, not mixed in. How the study is driven (its
budget, how many trials at once, where they go, whether workers drive it) may change from
one run of the command to the next: the last one's is recorded.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

import optuna

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import parse
from dbdict_celery.search import methods
from dbdict_celery.search.objective import Objective
from dbdict_celery.search.space import Space
from dbdict_celery.store.job import DEFAULT_PRIORITY

STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
# How a study is driven, not what it is: each run of its command may change these.
DRIVING = frozenset({"trials", "parallel", "priority", "exproot", "queue", "detached", "limits"})
# The samplers and pruners whose every decision comes from the trials and their curves
# alone, so that a study rebuilt from the table at each look of beat's (`--detach`)
# decides as one kept in memory would. The others keep state Optuna does not rebuild from
# trials (CMA-ES's search distribution, NSGA-II's generations, the QMC sequence's
# position, the grid's visited points, ASHA's and Hyperband's rungs).
DETACHABLE_SAMPLERS = ("tpe", "gp", "random")
CURVE_PRUNERS = ("median", "percentile")  # they compare a trial's curve with the others'
STATELESS_PRUNERS = ("none", *CURVE_PRUNERS)


@dataclass(frozen=True)
class Definition:
    """What a study searches and how; `name` is derived from the rest when not given."""

    experiment: str
    params: tuple[str, ...]
    objective: str
    trials: int
    sampler: str = "tpe"
    pruner: str = "none"
    prune_on: str | None = None  # the reported key the pruner watches (the objective's)
    seed: int | None = None
    enqueue: tuple[str, ...] = ()  # configurations to run before the sampler's, as typed
    name: str = field(default="")
    parallel: int = 1  # trials waiting or running at once
    priority: float = DEFAULT_PRIORITY
    exproot: str | None = None
    queue: str | None = None
    detached: bool = False  # driven by the workers' beat task, not by a command
    limits: dict[str, Any] | None = None  # the trials' limits (`Limits.record()`)

    def __post_init__(self) -> None:
        if self.trials < 1:
            raise UsageError(f"--trials must be at least 1, not {self.trials}")
        if self.parallel < 1:
            raise UsageError(f"--parallel must be at least 1, not {self.parallel}")
        if self.name and not STUDY_NAME.fullmatch(self.name):
            raise UsageError(
                f"malformed study name {self.name!r}: letters, digits and . _ - (at most 100)"
            )
        if not self.name:
            object.__setattr__(self, "name", self._derived_name())
        # everything parsed and checked now: a bad command fails before anything runs
        methods.sampler(self.sampler, self.space, self.goal, 0)
        methods.pruner(self.pruner, self.goal)
        if self.prune_on is not None and self.goal.multi:
            raise UsageError("--prune-on needs a single objective")
        _ = self.configurations

    def check_detachable(self) -> None:
        """A UsageError if its sampler or pruner keeps state that a study rebuilt at each
        look (`--detach`) would lose."""
        for kind, name, allowed in (("sampler", self.sampler, DETACHABLE_SAMPLERS),
                                    ("pruner", self.pruner, STATELESS_PRUNERS)):  # fmt: skip
            if name not in allowed:
                raise UsageError(
                    f"--detach rebuilds the study at each look, and the {name} {kind} keeps "
                    f"state that is lost so: use {', '.join(allowed)}, or drive it without "
                    "--detach"
                )

    @functools.cached_property
    def space(self) -> Space:
        """The search space its parameters give."""
        return Space.parse(self.params)

    @functools.cached_property
    def goal(self) -> Objective:
        """Its objective, parsed."""
        return Objective.parse(self.objective)

    def seeded(self, recorded: Definition | None) -> Definition:
        """This definition with a seed: its own, else the recorded study's (the command run
        again draws as before), else a new one (recorded with the study)."""
        if self.seed is not None:
            return self
        seed = recorded.seed if recorded is not None else secrets.randbits(31)
        return dataclasses.replace(self, seed=seed)

    @property
    def watched(self) -> str:
        """The reported key its pruner decides on."""
        return self.prune_on or self.goal.keys[0]

    @functools.cached_property
    def configurations(self) -> list[dict[str, Any]]:
        """The configurations `--enqueue` asks to run first, each in the space."""
        space = self.space
        chosen = []
        for text in self.enqueue:
            values = parse(*text.split())
            suggested = space.suggested(space.params(values))
            if suggested is None or values.keys() != space.distributions.keys():
                raise UsageError(
                    f"--enqueue {text!r} is not a point of the search space: give a value "
                    f"for each of {', '.join(space.distributions)}, within its range"
                )
            chosen.append(suggested)
        return chosen

    def study(self, told: int) -> optuna.Study:
        """A fresh in-memory Optuna study of this definition, its sampler seeded for a
        driver that starts with `told` trials already in the table (so that a restarted
        driver does not draw its first trials' values again)."""
        seed = (int(self.seed or 0) + 7919 * told) % 2**31
        return optuna.create_study(
            directions=list(self.goal.directions),
            sampler=methods.sampler(self.sampler, self.space, self.goal, seed),
            pruner=methods.pruner(self.pruner, self.goal),
            study_name=self.name,
        )

    def record(self) -> dict[str, Any]:
        """The definition as the table keeps it."""
        values = asdict(self)
        values["params"], values["enqueue"] = list(self.params), list(self.enqueue)
        return values

    @classmethod
    def from_record(cls, values: dict[str, Any]) -> Definition:
        """A definition the table kept."""
        return cls(**{**values, "params": tuple(values["params"]),
                      "enqueue": tuple(values["enqueue"])})  # fmt: skip

    def differs_from(self, recorded: Definition) -> list[str]:
        """The fields in which this definition differs from the one on record, but for how
        it is driven (running the command again with more trials extends the study)."""
        mine, theirs = self.record(), recorded.record()
        return [key for key in mine if key not in DRIVING and mine[key] != theirs[key]]

    def _derived_name(self) -> str:
        """The experiment's last name and a digest of what defines the study: the same
        command names the same study."""
        what = [self.experiment, sorted(self.params), self.objective, self.sampler,
                self.pruner, self.prune_on, self.seed, sorted(self.enqueue)]  # fmt: skip
        digest = hashlib.sha256(json.dumps(what).encode()).hexdigest()[:8]
        module, _, function = self.experiment.rpartition(".")
        short = module.rpartition(".")[2] if function == "experiment" and module else function
        return f"{short}-{digest}"
