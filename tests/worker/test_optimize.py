"""`dbdict optimize` with real workers: a study that survives its driver's death, and pruning
that survives its workers'."""

from __future__ import annotations

import json
import signal
import statistics
import subprocess
import threading
from collections import Counter
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.store import JobStore
from tests.conftest import DBDICT, wait_until
from tests.deployments import Deployment, embedded, environment, scheduled

IN_FLIGHT = (Status.START, Status.RUNNING)
BOWL = ["tests.experiments.bowl", "x=uniform(0, 1)", "y=uniform(0, 1)", "pause=0.3",
        "--objective", "loss:min", "--trials", "40", "--parallel", "4", "--seed", "7"]  # fmt: skip


def _driver(deployment: Deployment, *args: str) -> subprocess.Popen[bytes]:
    log = open(deployment.cwd / "driver.log", "a", encoding="utf-8")  # noqa: SIM115 (the child's)
    command = [DBDICT, "optimize", *args]
    env = environment(deployment.env)
    return subprocess.Popen(command, cwd=deployment.cwd, env=env, stdout=log, stderr=log)


class InFlight(threading.Thread):
    """Counts a study's trials waiting or running, again and again, keeping the most seen."""

    def __init__(self, store: JobStore) -> None:
        super().__init__(daemon=True)
        self.store, self.most, self.done = store, 0, threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.05):
            for name in self.store.study_names():
                now = sum(job.status in IN_FLIGHT for job in self.store.trials(name))
                self.most = max(self.most, now)


def test_a_detached_study_is_driven_to_its_end_by_a_worker_with_beat(cluster: Deployment) -> None:
    """`--detach` sends the first trials and returns; beat's looks do the rest, each with the
    study rebuilt from the table: they prune (a trial's points judged as a rebuilt study
    holds them), keep --parallel in flight, and stop once the study is complete."""
    store = cluster.store()
    cluster.start_worker("-c", "4", "-B", DBDICT_DRIVE_INTERVAL="1")  # a process for the looks
    watch = InFlight(store)
    watch.start()
    detached = cluster.dbdict(
        "optimize", "tests.experiments.descent", "lr=loguniform(0.01, 1)", "epochs=20",
        "pause=0.15", "--objective", "loss:min", "--trials", "16", "--parallel", "3",
        "--seed", "3", "--pruner", "median", "--detach",
    )  # fmt: skip
    assert detached.returncode == 0, detached.stderr
    (name,) = store.study_names()
    assert f"study {name} detached with 3 new trials sent" in detached.stderr
    wait_until(lambda: not (store.study_definition(name) or {}).get("detached"),
               "a look to find the study complete, and stop looking", timeout=300)  # fmt: skip
    watch.done.set()
    watch.join()
    shown = json.loads(cluster.dbdict("optimize", "--status", name, "--json").stdout)
    assert shown["complete"]
    trials = store.trials(name)
    assert [job.trial for job in trials] == list(range(16))
    assert {job.status for job in trials} == {Status.DONE, Status.PRUNED}, "slow learners pruned"
    assert all(job.state["epoch"] < 20 for job in trials if job.status is Status.PRUNED)
    assert len({job.params["lr"] for job in trials}) == 16
    assert 1 <= watch.most <= 3, "never more than --parallel in flight"


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_a_study_whose_driver_is_killed_goes_on_when_it_is_run_again(
    cluster: Deployment, sampler: str
) -> None:
    """Run again, the driver's sampler does not draw its first run's values again (random
    draws come from a seeded generator: started over, it would)."""
    store = cluster.store()
    cluster.start_worker("-c", "4")
    watch = InFlight(store)
    watch.start()
    command = [*BOWL, "--sampler", sampler]
    first = _driver(cluster, *command)
    wait_until(lambda: store.study_names(), "the study to be recorded")
    (name,) = store.study_names()
    wait_until(lambda: sum(job.status is Status.DONE for job in store.trials(name)) >= 15,
               "15 finished trials", timeout=120)  # fmt: skip
    first.kill()
    first.wait()
    assert len(store.trials(name)) < 40, "killed before the end"
    again = _driver(cluster, *command)
    assert again.wait(timeout=300) == 0, (cluster.cwd / "driver.log").read_text()
    watch.done.set()
    watch.join()
    trials = store.trials(name)
    assert [job.trial for job in trials] == list(range(40)), "exactly 40 trials, numbered"
    assert {job.status for job in trials} == {Status.DONE}
    points = Counter((job.params["x"], job.params["y"]) for job in trials)
    assert max(points.values()) == 1, "no parameter set asked twice"
    assert 1 <= watch.most <= 4, "never more than --parallel in flight"
    status = json.loads(cluster.dbdict("optimize", "--status", name, "--json").stdout)
    assert status["complete"]
    assert status["counts"]["DONE"] == 40
    best = min(trials, key=lambda job: job.state["loss"])
    assert status["best"][0]["id"] == best.id
    assert "trials already in the table" in (cluster.cwd / "driver.log").read_text()
    drawn = cluster.dbdict("plot", "--optimization", name, "-o", "study.png")
    assert drawn.returncode == 0, drawn.stderr
    assert (cluster.cwd / "study.png").read_bytes().startswith(b"\x89PNG")


DESCENT = ["tests.experiments.descent", "lr=loguniform(0.01, 1)", "epochs=40", "pause=0.15",
           "--objective", "loss:min", "--trials", "24", "--parallel", "4", "--seed", "3",
           "--pruner", "median"]  # fmt: skip


def test_a_pruned_study_through_a_killed_worker_and_a_warm_shutdown(cluster: Deployment) -> None:
    """No trial is both PRUNED and later DONE; a pruned trial keeps its state and curve; a
    trial preempted or lost resumes from its save, its earlier points kept."""
    store = cluster.store()
    doomed = cluster.start_worker("-c", "2", DBDICT_HEARTBEAT="1")
    stopping = cluster.start_worker("-c", "2", DBDICT_HEARTBEAT="1")
    driver = _driver(cluster, *DESCENT)
    wait_until(lambda: store.study_names(), "the study to be recorded")
    (name,) = store.study_names()

    def busy(worker: str) -> bool:
        """Whether a trial the pruner will not stop has saved 2 epochs on this worker: its lr
        is above the median lr of the DONE trials, so its loss is below their median loss at
        every epoch (what the median pruner compares)."""
        trials = store.trials(name)
        bar = statistics.median(job.params["lr"] for job in trials if job.status is Status.DONE)
        for job in trials:
            if job.status is Status.RUNNING and job.params["lr"] > bar:
                (run, *_) = reversed(store.attempts(job.id))
                if (run.worker or "").startswith(worker) and job.state.get("epoch", 0) >= 2:
                    return True
        return False

    wait_until(lambda: sum(job.status is Status.DONE for job in store.trials(name)) >= 6,
               "6 trials to be DONE", timeout=180)  # fmt: skip
    wait_until(lambda: busy("w1-"), "a trial running on the first worker", timeout=180)
    doomed.kill()
    wait_until(lambda: busy("w2-"), "a trial running on the second worker", timeout=180)
    stopping.signal(signal.SIGTERM)  # a warm shutdown: its runs go back to START
    stopping.process.wait(timeout=120)
    cluster.start_worker("-c", "4", DBDICT_HEARTBEAT="1")
    reconcile = ["reconcile", "--stale-after", "5"]
    while driver.poll() is None:
        cluster.dbdict(*reconcile)  # puts back the killed worker's runs once they are stale
        try:
            driver.wait(timeout=2)
        except subprocess.TimeoutExpired:
            continue
    assert driver.returncode == 0, (cluster.cwd / "driver.log").read_text()
    trials = store.trials(name)
    assert len(trials) == 24
    pruned = [job for job in trials if job.status is Status.PRUNED]
    assert pruned, "the median pruner stopped the slow learners"
    assert {job.status for job in trials} <= {Status.DONE, Status.PRUNED}
    for job in trials:
        outcomes = [attempt.outcome for attempt in store.attempts(job.id)]
        if job.status is Status.DONE:
            assert AttemptOutcome.PRUNED not in outcomes, f"job {job.id} PRUNED then DONE"
        epochs = job.state["epoch"]
        steps = [point.step for point in store.metrics(job.id, ["loss"])]
        assert steps == list(range(1, epochs + 1)), f"job {job.id}: its curve, whole, once"
        assert 1 <= epochs <= 40
        if job.status is Status.PRUNED:  # its state as its last save left it
            assert job.state["loss"] == 1 / (job.params["lr"] * epochs)
    resumed = [job for job in trials if job.attempts > 1]
    runs = {job.id: [(a.worker, a.outcome, a.reason) for a in store.attempts(job.id)]
            for job in trials}  # fmt: skip
    assert resumed, f"a run was lost or preempted: {runs}"
    by_run = {job.id: [p.run or 0 for p in store.metrics(job.id, ["loss"])] for job in resumed}
    assert all(runs == sorted(runs) for runs in by_run.values()), "later runs, later steps"
    assert any(len(set(runs)) > 1 for runs in by_run.values()), "a run went on from a save"


def test_earlier_results_are_told_first_and_enqueued_points_run_first(tmp_path: Path) -> None:
    with embedded(tmp_path) as deployment:
        scheduled(deployment, "tests.experiments.bowl", "x=choice(0.1, 0.2, 0.3, 5)", "y=0.5",
                  "pause=0")  # fmt: skip
        deployment.start_worker("-c", "2")
        store = deployment.store()
        wait_until(lambda: all(job.status is Status.DONE for job in store.jobs()), "4 DONE jobs")
        done = deployment.dbdict(
            "optimize", "tests.experiments.bowl", "x=uniform(0, 1)", "y=0.5", "pause=0",
            "--objective", "loss:min", "--trials", "3", "--enqueue", "x=0.25", "--seed", "1",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "told the sampler 3 earlier DONE jobs first" in done.stderr, "x=5 is outside"
        (name,) = store.study_names()
        trials = store.trials(name)
        assert trials[0].params["x"] == 0.25, "the enqueued point runs first"
        assert {job.status for job in trials} == {Status.DONE}

        wrong = deployment.dbdict(
            "optimize", "tests.experiments.bowl", "x=uniform(0, 1)", "y=0.5", "pause=0",
            "--objective", "los:min", "--trials", "2", "--study", "typo",
        )  # fmt: skip
        assert wrong.returncode == 2, wrong.stderr
        (line,) = wrong.stderr.strip().splitlines()[-1:]
        assert "without the objective 'los'" in line
        assert "loss" in line, "it names the keys there are"
        assert "Traceback" not in wrong.stderr
