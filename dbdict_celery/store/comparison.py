"""`dbdict diff`: what differs between two runs, in what they were given and what they ran.

A result that changed between two jobs (or two attempts of one job) changed
for a reason: a parameter, the code (a commit, uncommitted changes), the
packages, the machine. This names each difference, and only those: results
themselves are what `dbdict show` and `dbdict list` are for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from dbdict_celery.errors import UsageError
from dbdict_celery.store.attempt import Attempt, AttemptOutcome
from dbdict_celery.store.store import JobStore

ABSENT = None  # how a side that has no such key shows
_REF = re.compile(r"[0-9]+(@[0-9]+)?")


@dataclass(frozen=True)
class RunRef:
    """A job, and one of its attempts (None: its last that ran)."""

    job_id: int
    attempt: int | None = None

    @classmethod
    def parse(cls, text: str) -> RunRef:
        """`12` (job 12's last attempt) or `12@3` (its third)."""
        if not _REF.fullmatch(text):
            raise UsageError(f"malformed run {text!r}: expected a job id (12) or id@attempt (12@3)")
        job, at, attempt = text.partition("@")
        return cls(int(job), int(attempt) if at else None)

    def __str__(self) -> str:
        return f"{self.job_id}" if self.attempt is None else f"{self.job_id}@{self.attempt}"


@dataclass(frozen=True)
class Difference:
    """One thing that differs: its kind (`parameter`, `code`, `package`...), its name, and
    its value on each side (None where that side has none)."""

    kind: str
    name: str
    left: Any
    right: Any


@dataclass(frozen=True)
class _Run:
    experiment: str
    params: dict[str, Any]
    attempt: Attempt | None
    packages: dict[str, str] | None

    @property
    def captured(self) -> bool:
        """Whether the run recorded its environment (capture was on)."""
        return self.attempt is not None and self.attempt.environment is not None


def compare(store: JobStore, left: RunRef, right: RunRef) -> list[Difference]:
    """The differences between two runs of `store`'s table: parameters, experiment, whether
    each ran and recorded its environment, code (commit, branch, dirty flag, repository),
    Python, platform, host, and, when both recorded them, package versions, variables and
    hardware."""
    one, other = _run(store, left), _run(store, right)
    found = _differences("parameter", one.params, other.params)
    found += _differences("experiment", {"name": one.experiment}, {"name": other.experiment})
    recorded = {"ran": one.attempt is not None, "captured": one.captured}
    recorded_there = {"ran": other.attempt is not None, "captured": other.captured}
    found += _differences("run", recorded, recorded_there)
    if one.attempt is None or other.attempt is None:
        return found  # a job never run has nothing more to compare
    found += _differences("code", _code(one.attempt), _code(other.attempt))
    found += _differences("environment", _where(one.attempt), _where(other.attempt))
    if one.captured and other.captured:  # one side alone would list its every package
        found += _differences("package", one.packages or {}, other.packages or {})
        found += _differences("variable", one.attempt.variables, other.attempt.variables)
        found += _differences("hardware", one.attempt.hardware, other.attempt.hardware)
    return found


def _run(store: JobStore, ref: RunRef) -> _Run:
    job = store.get(ref.job_id)
    ran = [a for a in store.attempts(job.id) if a.outcome is not AttemptOutcome.GIVEN_BACK]
    if ref.attempt is not None:
        chosen = [a for a in ran if a.attempt == ref.attempt]
        if not chosen:
            numbers = ", ".join(str(a.attempt) for a in ran) or "none"
            raise UsageError(f"job {job.id} has no attempt {ref.attempt} (it has: {numbers})")
        ran = chosen
    attempt = ran[-1] if ran else None
    packages = None
    if attempt is not None and attempt.environment:
        listed = store.packages(attempt.environment)
        packages = None if listed is None else dict(_package(line) for line in listed)
    return _Run(job.experiment, job.params, attempt, packages)


def _package(line: str) -> tuple[str, str]:
    name, _, version = line.partition("==")
    return name.lower(), version


def _code(attempt: Attempt) -> dict[str, Any]:
    return {
        "commit": attempt.code_commit,
        "branch": attempt.code_branch,
        "dirty": attempt.code_dirty,
        "repository": attempt.code_repository,
    }


def _where(attempt: Attempt) -> dict[str, Any]:
    return {"python": attempt.python, "platform": attempt.platform, "host": attempt.host}


def _differences(kind: str, left: dict[str, Any], right: dict[str, Any]) -> list[Difference]:
    """Values compared as written (by `repr`): 1, 1.0 and True are different parameters, as
    they are to the table, and NaN is the same as NaN."""
    return [
        Difference(kind, name, left.get(name, ABSENT), right.get(name, ABSENT))
        for name in sorted(left.keys() | right.keys())
        if repr(left.get(name, ABSENT)) != repr(right.get(name, ABSENT))
    ]
