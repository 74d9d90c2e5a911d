"""What `dbdict optimize` finds, what its pruning saves, and what driving trials through the
table costs; each side by side with the same work done another way, on Postgres + Redis
with one `celery -A dbdict_celery worker -c 2` (two worker processes).

1. Search quality: the 6-D Hartmann function (`search_objectives.hartmann`, minimum
   -3.32237), 60 trials, `--parallel 4`, over 5 seeds; the median over seeds of the
   regret (best value found minus the minimum). TPE against random search with the same
   budget and parallelism (target: < 1x, TPE finds better), and TPE driven by dbdict
   against the same sampler (TPE, `constant_liar`, the same seed) in plain Optuna, in
   one process, keeping 4 trials in flight and telling them in the order they were asked
   (target: <= 1.5x, the same within the noise of 5 seeds: the driver feeds the sampler
   as Optuna itself does).
2. Early stopping: synthetic learning curves (`search_objectives.training`: 20 epochs of
   0.15 s, the loss reported and saved after each; the curves of large learning rates
   fall fastest but do not end lowest), 30 TPE trials, `--parallel 4`, over 3 seeds, with
   each of `--pruner median`, `percentile` (the 25th) and `asha` against none. The epochs
   run in all (points reported; target: <= 0.5x) and the median best final loss (target:
   <= 1.05x, the same best value).
3. Overhead: trials per second of `dbdict optimize --parallel 4` of the Hartmann
   experiment (no work to speak of: what is measured is the driving), against Optuna's
   distributed pattern on the same Postgres: two processes each running
   `study.optimize` on one study in an RDB storage (`optuna_rdb.py`), both with TPE;
   timed from the first trial's start to the last one's end, as the table and Optuna's
   storage record them, two alternating rounds (target: >= 1x).

Usage: python -m benchmarks --only optimize [--scale 1.0] [--db URL] records the figures
in benchmarks/results.json, beside the other suites'; python -m benchmarks.optimize_bench
prints them only. The driver runs as users run it, as the `dbdict optimize` command.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence

import optuna

from benchmarks.common import (
    CELERY,
    DBDICT,
    REPO,
    Cluster,
    Result,
    Settings,
    alternate,
    cluster,
    ratio,
    report,
    settings_from_arguments,
    workers,
)
from benchmarks.search_objectives import CURVE_SPACE, HARTMANN_MINIMUM, HARTMANN_SPACE, hartmann6
from benchmarks.worker_bench import scratch_database
from dbdict_celery.experiment.status import Status

PARALLEL = 4
PRUNERS = ("median", "percentile", "asha")  # Optuna's MedianPruner, PercentilePruner(25), ASHA
WORKER = [CELERY, "-A", "dbdict_celery", "worker", "-c", "2", "--without-mingle",
          "--without-gossip", "-l", "WARNING"]  # fmt: skip


def measure(settings: Settings) -> list[Result]:
    """The three measures, on one table and one worker."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with cluster(settings, "optimize") as here, workers([WORKER], here.env):
        return [*_search_quality(here, settings), *_early_stopping(here, settings),
                _overhead(here, settings)]  # fmt: skip


def _optimize(here: Cluster, experiment: str, space: Sequence[str], *options: str) -> str:
    """Run `dbdict optimize` to the end; the study's name."""
    study = f"bench-{uuid.uuid4().hex[:8]}"
    command = [DBDICT, "optimize", experiment, *space, "--study", study,
               "--parallel", str(PARALLEL), *options]  # fmt: skip
    done = subprocess.run(command, env=here.env, cwd=REPO, capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr}")
    return study


def _best(here: Cluster, study: str, key: str) -> float:
    """The least `key` of the study's DONE trials."""
    trials = here.store.trials(study)
    return min(float(job.state[key]) for job in trials if job.status is Status.DONE)


def _hartmann_study(here: Cluster, sampler: str, seed: int, trials: int) -> float:
    """The regret of a dbdict study of the Hartmann function."""
    study = _optimize(here, "benchmarks.search_objectives.hartmann", HARTMANN_SPACE,
                      "--objective", "value:min", "--trials", str(trials),
                      "--sampler", sampler, "--seed", str(seed))  # fmt: skip
    return _best(here, study, "value") - HARTMANN_MINIMUM


def _plain_optuna(seed: int, trials: int) -> float:
    """The regret of the same TPE study in plain Optuna, in this process: `PARALLEL`
    trials in flight, told in the order they were asked."""
    sampler = optuna.samplers.TPESampler(seed=seed, constant_liar=True)
    study = optuna.create_study(sampler=sampler)
    distribution = optuna.distributions.FloatDistribution(0.0, 1.0)
    space: dict[str, optuna.distributions.BaseDistribution] = {
        f"x{i}": distribution for i in range(6)
    }
    in_flight: list[optuna.trial.Trial] = []
    for number in range(trials + PARALLEL):
        if number < trials:
            in_flight.append(study.ask(space))
        if len(in_flight) == PARALLEL or (number >= trials and in_flight):
            trial = in_flight.pop(0)
            study.tell(trial, hartmann6([trial.params[f"x{i}"] for i in range(6)]))
    return study.best_value - HARTMANN_MINIMUM


def _search_quality(here: Cluster, settings: Settings) -> list[Result]:
    seeds, trials = range(settings.size(5, least=2)), settings.size(60, least=12)
    tpe = statistics.median(_hartmann_study(here, "tpe", seed, trials) for seed in seeds)
    random = statistics.median(_hartmann_study(here, "random", seed, trials) for seed in seeds)
    plain = statistics.median(_plain_optuna(seed, trials) for seed in seeds)
    name = f"optimize, Hartmann-6, {trials} trials, {len(seeds)} seeds: median regret of TPE"
    figures = {"tpe": tpe, "random": random, "plain_optuna": plain}
    return [
        ratio(f"{name} / random search", tpe, random, ("<", 1.0),
              f"{tpe:.3f} vs {random:.3f}", **figures),
        ratio(f"{name} / plain Optuna's TPE", tpe, plain, ("<=", 1.5),
              f"{tpe:.3f} vs {plain:.3f}", **figures),
    ]  # fmt: skip


def _training_study(here: Cluster, pruner: str, seed: int, trials: int) -> tuple[float, int]:
    """The best final loss of a study of the synthetic curves, and the epochs it ran."""
    study = _optimize(here, "benchmarks.search_objectives.training", CURVE_SPACE,
                      "epochs=20", "pause=0.15", "--objective", "loss:min",
                      "--trials", str(trials), "--pruner", pruner, "--seed", str(seed))  # fmt: skip
    jobs = [job.id for job in here.store.trials(study)]
    return _best(here, study, "loss"), len(here.store.metrics(jobs, ["loss"]))


def _early_stopping(here: Cluster, settings: Settings) -> list[Result]:
    seeds, trials = range(settings.size(3, least=1)), settings.size(30, least=8)
    unpruned = [_training_study(here, "none", seed, trials) for seed in seeds]
    all_epochs = sum(epochs for _, epochs in unpruned)
    unpruned_best = statistics.median(loss for loss, _ in unpruned)
    results = []
    for pruner in PRUNERS:
        pruned = [_training_study(here, pruner, seed, trials) for seed in seeds]
        epochs = sum(e for _, e in pruned)
        best = statistics.median(loss for loss, _ in pruned)
        name = f"optimize, synthetic curves, {trials} trials, {len(seeds)} seeds: {pruner} pruning"
        figures = {"epochs": epochs, "all_epochs": all_epochs, "best": best,
                   "unpruned_best": unpruned_best}  # fmt: skip
        results += [
            ratio(f"{name} / none, epochs run", epochs, all_epochs, ("<=", 0.5),
                  f"{epochs} vs {all_epochs} epochs", **figures),
            ratio(f"{name} / none, median best loss", best, unpruned_best, ("<=", 1.05),
                  f"{best:.4f} vs {unpruned_best:.4f}", **figures),
        ]  # fmt: skip
    return results


def _dbdict_rate(here: Cluster, trials: int) -> float:
    study = _optimize(here, "benchmarks.search_objectives.hartmann", HARTMANN_SPACE,
                      "--objective", "value:min", "--trials", str(trials),
                      "--seed", "1")  # fmt: skip
    jobs = here.store.trials(study)
    first = min(job.started_at for job in jobs if job.started_at)
    last = max(job.finished_at for job in jobs if job.finished_at)
    return trials / (last - first).total_seconds()


def _optuna_rate(storage: str, trials: int) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    optuna.create_study(storage=storage, study_name=name)
    command = [sys.executable, "-m", "benchmarks.optuna_rdb", storage, name]
    processes = [
        subprocess.Popen([*command, str(share), str(seed)], cwd=REPO)
        for seed, share in enumerate((trials // 2, trials - trials // 2))
    ]
    for process in processes:
        if process.wait() != 0:
            raise SystemExit(f"{' '.join(process.args)} failed")  # type: ignore[arg-type]
    ended = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
    first = min(trial.datetime_start for trial in ended if trial.datetime_start)
    last = max(trial.datetime_complete for trial in ended if trial.datetime_complete)
    return trials / (last - first).total_seconds()


def _overhead(here: Cluster, settings: Settings) -> Result:
    trials = settings.size(200, least=20)
    with scratch_database(settings.db) as database:
        storage = database.replace("postgresql://", "postgresql+psycopg://", 1)
        ours, theirs = alternate(
            lambda: _dbdict_rate(here, trials), lambda: _optuna_rate(storage, trials), rounds=2
        )
    return ratio(f"optimize, {trials} no-op trials, --parallel 4 / Optuna RDB, 2 processes",
                 ours, theirs, (">=", 1.0), f"{ours:.1f} vs {theirs:.1f} trials/s",
                 dbdict=ours, optuna=theirs)  # fmt: skip


if __name__ == "__main__":
    started = time.perf_counter()
    report(measure(settings_from_arguments(__doc__)))
    print(f"{time.perf_counter() - started:.0f} s")
