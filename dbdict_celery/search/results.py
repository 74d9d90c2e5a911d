"""Where a study stands, and its best trials: `dbdict optimize --status/--best NAME`."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.search.definition import Definition
from dbdict_celery.search.pareto import pareto_front
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore


@dataclass(frozen=True)
class StudyStatus:
    """A study's definition, its trials by status, and its best ones so far."""

    definition: Definition
    counts: dict[Status, int]
    best: list[Job]

    @property
    def trials(self) -> int:
        """How many trials are in the table."""
        return sum(self.counts.values())

    @property
    def complete(self) -> bool:
        """Whether it has all its trials and none in flight."""
        in_flight = self.counts.get(Status.START, 0) + self.counts.get(Status.RUNNING, 0)
        return self.trials >= self.definition.trials and not in_flight


def study_status(store: JobStore, name: str, best: int = 5) -> StudyStatus:
    """Where study `name` of this table stands; UsageError if it has no such study."""
    recorded = store.study_definition(name)
    if recorded is None:
        known = ", ".join(store.study_names()) or "none"
        raise UsageError(f"no study {name!r} in {store.path} (its studies: {known})")
    definition = Definition.from_record(recorded)
    trials = store.trials(name)
    counts = Counter(job.status for job in trials)
    return StudyStatus(definition, dict(counts), best_trials(trials, definition, best))


def best_trials(trials: list[Job], definition: Definition, count: int) -> list[Job]:
    """The best DONE trials: by the objective for one (best first, `count` of them), the
    Pareto front for several (all of it)."""
    done = [job for job in trials if job.status is Status.DONE]
    goal = definition.goal
    if goal.multi:
        return pareto_front(done, goal)
    key, sign = goal.keys[0], (1 if goal.directions[0].name == "MINIMIZE" else -1)
    return sorted(done, key=lambda job: _order(job, key, sign))[:count]


def _order(job: Job, key: str, sign: int) -> float:
    value = job.state.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value == value:
        return sign * float(value)
    return float("inf")
