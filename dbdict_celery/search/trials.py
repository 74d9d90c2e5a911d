"""An ended trial of the table as Optuna's FrozenTrial: what the driver tells its sampler
when it rebuilds a study, and what `plot --optimization` asks Optuna's importances of."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState, create_trial

from dbdict_celery.experiment.status import Status
from dbdict_celery.search.definition import Definition
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore


def ended_trial(definition: Definition, job: Job, curve: dict[int, float] | None) -> FrozenTrial:
    """A trial that ended: DONE with its objective (FAILED if it is not a finite number;
    MissingObjective if a key is not in its state), FAILED, or PRUNED with its `curve`."""
    values = definition.goal.values(job.id, job.state) if job.status is Status.DONE else None
    state = TrialState.COMPLETE if values is not None else ended_state(job.status)
    return create_trial(
        state=state,
        params=definition.space.suggested(job.params),
        distributions=definition.space.distributions,
        values=values,
        intermediate_values=curve,
    )


def ended_state(status: Status) -> TrialState:
    """The Optuna state of a trial that did not end DONE."""
    return TrialState.PRUNED if status is Status.PRUNED else TrialState.FAIL


def told_study(store: JobStore, definition: Definition) -> optuna.Study:
    """The study's ended trials (CANCELLED ones left out) in a fresh in-memory study."""
    study = optuna.create_study(directions=list(definition.goal.directions))
    for job in store.trials(definition.name):
        if job.status in (Status.DONE, Status.FAILED, Status.PRUNED):
            study.add_trial(ended_trial(definition, job, None))
    return study
