"""`dbdict optimize` refuses a study it cannot run in one line, before anything is written;
`dbdict list --pareto` lists the non-dominated jobs of any table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import REPO, dbdict

QUADRATIC = "examples.quadratic.experiment"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["lr=choice(0.1, 0.2)", "--objective", "loss:min", "--sampler", "cmaes"],
         "cmaes sampler searches ranges of numbers"),
        (["lr=uniform(0, 1)", "--objective", "loss:min,x:max", "--sampler", "cmaes"],
         "cmaes sampler optimizes one objective"),
        (["lr=uniform(0, 1)", "--objective", "loss:min,x:max", "--pruner", "median"],
         "--pruner median stops trials on one objective"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--parallel", "0"],
         "--parallel must be at least 1, not 0"),
        (["lr=uniform(0, 1)", "--objective", "loss:least"], "malformed objective 'loss:least'"),
        (["lr=0.1", "--objective", "loss:min"], "nothing to search"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--sampler", "grid"],
         "the grid sampler takes choice() or range() values only"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--enqueue", "lr=7"],
         "--enqueue 'lr=7' is not a point of the search space"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--trials", "0"],
         "--trials must be at least 1, not 0"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--sampler", "cmaes", "--detach"],
         "the cmaes sampler keeps state that is lost so: use tpe, gp, random"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--pruner", "asha", "--detach"],
         "the asha pruner keeps state that is lost so: use none, median, percentile"),
        (["lr=choice(0.1, 0.2)", "--objective", "loss:min", "--sampler", "grid", "--detach"],
         "the grid sampler keeps state"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--time-limit", "soon"],
         "malformed --time-limit 'soon'"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--memory", "8Q"],
         "malformed --memory '8Q'"),
        (["lr=uniform(0, 1)", "--objective", "loss:min", "--max-running", "2"],
         "a study's is --parallel"),
    ],
)  # fmt: skip
def test_a_study_that_cannot_run_is_one_line_and_exit_2_with_nothing_written(
    tmp_path: Path, args: list[str], says: str
) -> None:
    trials = [] if "--trials" in args else ["--trials", "5"]
    done = dbdict(
        "optimize", QUADRATIC, *args, *trials, cwd=REPO, DBDICT_HOME=str(tmp_path / "home")
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert says in done.stderr
    jobs = tmp_path / "home" / "jobs.db"
    if jobs.exists():
        store = JobStore.open(f"sqlite:///{jobs}/jobs")
        assert (store.study_names(), store.jobs()) == ([], [])


def test_the_trials_of_a_study_keep_its_limits(tmp_path: Path) -> None:
    """--time-limit and --memory apply to each trial, as to the jobs of `schedule`."""
    home = tmp_path / "home"
    done = dbdict("optimize", QUADRATIC, "lr=uniform(0, 1)", "--objective", "loss:min",
                  "--trials", "4", "--parallel", "2", "--detach", "--time-limit", "10m",
                  "--memory", "1G", cwd=REPO, DBDICT_HOME=str(home))  # fmt: skip
    assert done.returncode == 0, done.stderr
    trials = JobStore.open(f"sqlite:///{home / 'jobs.db'}/jobs").jobs()
    assert len(trials) == 2
    assert all(job.limits == {"time_limit": 600.0, "memory": 2**30} for job in trials)


def test_list_pareto_lists_exactly_the_jobs_no_other_beats_on_every_key(tmp_path: Path) -> None:
    location = f"sqlite:///{tmp_path}/jobs.db/jobs"
    store = JobStore.open(location)
    results = {  # (loss, latency): 1 and 2 trade off; 3 is beaten by 1; 4 ties 2, beats none
        1: (0.1, 30.0), 2: (0.3, 10.0), 3: (0.2, 40.0), 4: (0.3, 10.0), 5: (0.05, 50.0),
    }  # fmt: skip
    list(store.insert([NewJob("tests.experiments.mark", {"n": n}) for n in results]))
    for _ in results:
        run = store.book()
        assert run is not None
        loss, latency = results[run.params["n"]]
        store.finish(run, Status.DONE, {"n": run.params["n"], "loss": loss, "latency_ms": latency})
    done = dbdict("list", "--db", location, "--pareto", "loss:min,latency_ms:min", "--json",
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(job["state"]["n"] for job in json.loads(done.stdout)) == [1, 2, 4, 5]
    reversed_ = dbdict("list", "--db", location, "--pareto", "loss:max,latency_ms:min", "--json",
                       cwd=tmp_path)  # fmt: skip
    assert sorted(job["state"]["n"] for job in json.loads(reversed_.stdout)) == [2, 4]
