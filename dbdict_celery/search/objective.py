"""What a study optimizes: one or more keys of each trial's final state, each minimized or
maximized (`--objective loss:min,latency_ms:min`)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from optuna.study import StudyDirection

from dbdict_celery.errors import UsageError

_PART = re.compile(r"(?P<key>[A-Za-z_][\w.]*):(?P<direction>min|max)")
DIRECTIONS = {"min": StudyDirection.MINIMIZE, "max": StudyDirection.MAXIMIZE}


class MissingObjective(UsageError):
    """A finished trial whose state has no value for an objective key: a typo in the key,
    most likely, which no later trial would correct."""


@dataclass(frozen=True)
class Objective:
    """The state keys a study optimizes and, for each, its direction."""

    keys: tuple[str, ...]
    directions: tuple[StudyDirection, ...]

    @classmethod
    def parse(cls, text: str) -> Objective:
        """Read `key:min` or `key:max`, comma-separated for several objectives."""
        keys: list[str] = []
        directions: list[StudyDirection] = []
        for part in text.split(","):
            match = _PART.fullmatch(part.strip())
            if match is None:
                raise UsageError(
                    f"malformed objective {part.strip()!r}: write KEY:min or KEY:max "
                    "(e.g. --objective loss:min, or loss:min,latency_ms:min)"
                )
            if match["key"] in keys:
                raise UsageError(f"objective {match['key']!r} is given twice")
            keys.append(match["key"])
            directions.append(DIRECTIONS[match["direction"]])
        return cls(tuple(keys), tuple(directions))

    @property
    def multi(self) -> bool:
        """Whether there is more than one objective (a Pareto front, not one best)."""
        return len(self.keys) > 1

    def values(self, job_id: int, state: dict[str, Any]) -> list[float] | None:
        """The objective values a finished trial's state holds; None if one is not a finite
        number (the trial is told as failed). MissingObjective if a key is not there."""
        missing = [key for key in self.keys if key not in state]
        if missing:
            known = ", ".join(sorted(state)) or "none"
            raise MissingObjective(
                f"job {job_id} ended DONE without the objective {missing[0]!r} in its state "
                f"(its keys: {known}): check --objective"
            )
        values = [state[key] for key in self.keys]
        if not all(_finite(value) for value in values):
            return None
        return [float(value) for value in values]

    def __str__(self) -> str:
        words = {d: w for w, d in DIRECTIONS.items()}
        return ",".join(f"{k}:{words[d]}" for k, d in zip(self.keys, self.directions, strict=True))


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
