"""Planning a sweep: the validated jobs that `dbdict schedule` is asked for.

A `Plan` is one experiment, its parameters (sweeps included, see
`experiment/sweep.py`), a priority, an exproot, a queue and the jobs' limits. Everything that can be
checked is checked when the plan is made, before anything is written: a typo
never becomes a row, and a sweep is never half-inserted because of a bad
value in its middle. `worker.submit` then inserts the plan and sends its messages.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from dbdict_celery.errors import UnstorableValue, UsageError
from dbdict_celery.experiment.channel import resolve_experiment
from dbdict_celery.experiment.params import expand, flatten
from dbdict_celery.experiment.runner import importing_from_cwd
from dbdict_celery.experiment.sweep import Sweep
from dbdict_celery.experiment.sync import Remote
from dbdict_celery.store.job import DEFAULT_PRIORITY, NewJob
from dbdict_celery.store.limits import Limits
from dbdict_celery.store.values import encode

QUEUE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class Plan:
    """The jobs one `dbdict schedule` asks for, produced one at a time."""

    experiment: str
    sweep: Sweep
    priority: float = DEFAULT_PRIORITY
    exproot: str | None = None
    queue: str | None = None
    limits: Limits = field(default_factory=Limits)

    def __len__(self) -> int:
        return len(self.sweep)

    def jobs(self) -> Iterator[NewJob]:
        limits = self.limits.record()
        for params in self.sweep:
            yield NewJob(
                self.experiment,
                flatten(expand(params)),
                self.priority,
                self.exproot,
                self.queue,
                limits=limits,
                run_group=self.limits.group,
                max_running=self.limits.max_running,
            )


def plan(
    experiment: str,
    params: Sequence[str],
    priority: float = DEFAULT_PRIORITY,
    exproot: str | None = None,
    samples: int | None = None,
    seed: int | None = None,
    queue: str | None = None,
    limits: Limits | None = None,
) -> Plan:
    """Check an experiment and its parameters, and plan their jobs.

    The experiment must be importable here and now, by the rule of the `dbdict` command
    (from the current directory first: `importing_from_cwd`), so that a script run from
    elsewhere checks what `dbdict schedule` run here would. Every swept value must make a
    valid job together with the fixed parameters. `limits` apply to every job (none by
    default: see `Limits`).
    """
    if isinstance(params, str):
        raise UsageError(f"params must be a list of key=value strings, not the string {params!r}")
    with importing_from_cwd():
        resolve_experiment(experiment)
    sweep = Sweep.parse(params, samples, seed)
    try:
        for key, values in sweep.grid:
            for value in values:
                encode(flatten(expand({**sweep.fixed, key: value})))
        encode(flatten(expand(sweep.fixed)))
    except UnstorableValue as error:  # typed by the user: a usage mistake
        raise UsageError(str(error)) from None
    root = str(Remote.parse(exproot)) if exproot else None
    if queue is not None and not QUEUE_NAME.fullmatch(queue):
        raise UsageError(
            f"malformed queue name {queue!r}: letters, digits, and . _ - only (e.g. gpu)"
        )
    limits = (limits or Limits()).grouped(_sweep_name(experiment, params))
    return Plan(experiment, sweep, priority, root, limits.queue(queue), limits)


def _sweep_name(experiment: str, params: Sequence[str]) -> str:
    """A sweep's group name: its experiment's last name and a digest of the command's
    parameters (the same command, the same group)."""
    digest = hashlib.sha256(repr((experiment, sorted(params))).encode()).hexdigest()[:8]
    module = experiment.rpartition(".")[0].rpartition(".")[2] or experiment
    return f"{re.sub(r'[^A-Za-z0-9._-]', '', module).strip('._-')[:60] or 'sweep'}-{digest}"
