"""Optuna's own distributed pattern, as the optimize benchmark compares dbdict with it: a
process running `study.optimize` on a study kept in an RDB storage (Postgres), several
such processes sharing the study.

Usage: python -m benchmarks.optuna_rdb STORAGE_URL STUDY TRIALS SEED
"""

from __future__ import annotations

import sys

import optuna

from benchmarks.search_objectives import hartmann6


def objective(trial: optuna.Trial) -> float:
    """The Hartmann function, as the dbdict side's `hartmann` experiment evaluates it."""
    return hartmann6([trial.suggest_float(f"x{i}", 0.0, 1.0) for i in range(6)])


def main() -> None:
    storage, name, trials, seed = sys.argv[1:]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=int(seed), constant_liar=True)
    study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    study.optimize(objective, n_trials=int(trials))


if __name__ == "__main__":
    main()
