"""Which parameters mattered in a study: Optuna's own importances (fANOVA) of its trials,
for `dbdict plot --optimization` and the dashboard's study page."""

from __future__ import annotations

from dbdict_celery.search.definition import Definition
from dbdict_celery.store.store import JobStore


def param_importances(store: JobStore, definition: Definition) -> dict[str, float] | None:
    """Each parameter's importance to the first objective, most important first; None when
    there is nothing to weigh (fewer than 2 parameters, or 2 complete trials)."""
    import optuna

    from dbdict_celery.search.trials import told_study

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its study is ours, in memory
    study = told_study(store, definition)
    complete = [t for t in study.trials if t.state is optuna.trial.TrialState.COMPLETE]
    if len(definition.space.distributions) < 2 or len(complete) < 2:
        return None
    target = (lambda trial: trial.values[0]) if len(definition.goal.keys) > 1 else None
    return dict(optuna.importance.get_param_importances(study, target=target))
