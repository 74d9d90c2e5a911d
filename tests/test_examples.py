"""The examples run end to end on the embedded default, stops and resumes included, and the
examples' walkthrough works as written."""

from __future__ import annotations

import csv
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdict_celery.experiment.metrics_file import METRICS_FILE, read_points
from dbdict_celery.experiment.status import Status
from tests.conftest import REPO, read_conf, wait_until
from tests.deployments import Deployment, embedded, kill_session, scheduled, wait_for_statuses

pytest.importorskip("sklearn", reason="the examples extra: pip install -e '.[examples,plot]'")
pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[examples,plot]'")

PNG = b"\x89PNG\r\n\x1a\n"
BIN = Path(sys.executable).parent


@pytest.fixture
def laptop(tmp_path: Path) -> Iterator[Deployment]:
    """The embedded default, in a directory holding a copy of the examples; its workers
    killed at the end."""
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    with embedded(tmp_path) as deployment:
        yield deployment


def _walkthrough() -> str:
    text = (REPO / "examples" / "README.md").read_text()
    block = re.search(r"<!-- walkthrough[^>]*-->\n```bash\n(.*?)```", text, re.S)
    assert block, "examples/README.md has its walkthrough block"
    return block.group(1)


def test_the_walkthrough_runs_as_written(laptop: Deployment) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("DBDICT_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    script = subprocess.Popen(
        ["bash", "-euo", "pipefail", "-c", _walkthrough()], cwd=laptop.cwd, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:  # its workers run in the background: a script that fails half-way leaves them
        stdout, stderr = script.communicate(timeout=900)
    finally:
        kill_session(script)
    assert script.returncode == 0, stdout[-2000:] + stderr[-3000:]
    store = Deployment("walkthrough", f"sqlite:///{laptop.cwd}/dbdict-home/jobs.db/jobs", {},
                       laptop.cwd / "dbdict-home" / "exproot", laptop.cwd).store()  # fmt: skip
    jobs = {job.id: job for job in store.jobs()}
    assert len(jobs) == 12
    assert jobs[12].status is Status.CANCELLED
    assert all(job.status is Status.DONE for job_id, job in jobs.items() if job_id != 12)
    resumed = [job for job in jobs.values() if job.attempts == 2]
    assert resumed, "the preempted worker's job ran again, on the other worker"
    assert all(job.state["epoch"] == 200 for job in resumed)
    with open(laptop.cwd / "results.csv", newline="") as results:
        rows = list(csv.DictReader(results))
    assert len(rows) == 11
    assert all(0.5 < float(row["accuracy"]) <= 1 for row in rows)
    assert [p.step for p in store.metrics(resumed[0].id, keys=["loss"])] == list(range(1, 201))
    for image in ("sweep.png", "curves.png", "timeline.png"):
        assert (laptop.cwd / image).read_bytes().startswith(PNG), image


def test_quadratic_sweeps_and_resumes_after_a_cancel_on_the_embedded_default(
    laptop: Deployment,
) -> None:
    scheduled(laptop, "examples.quadratic.experiment", "lr=choice(0.01, 0.1)", "epochs=30")
    (long,) = [job for job in scheduled(laptop, "examples.quadratic.experiment",
                                        "lr=0.001", "epochs=5000") if job.id == 3]  # fmt: skip
    store = laptop.store()
    laptop.start_worker("-c", "2")
    wait_until(lambda: store.get(long.id).state.get("epoch", 0) >= 5, "the long job to save")
    assert laptop.dbdict("cancel", str(long.id)).returncode == 0
    wait_until(lambda: store.get(long.id).status is Status.CANCELLED, "the cancel", 90)
    stopped_at = store.get(long.id).state["epoch"]
    assert 5 <= stopped_at < 5000
    assert laptop.dbdict("requeue", str(long.id)).returncode == 0
    wait_for_statuses(store, Status.DONE, timeout=600)
    final = store.get(long.id)
    assert final.state["epoch"] == 5000
    assert final.attempts == 2
    for job in store.jobs():
        assert job.state["loss"] < (3.0**2), "every run moved x towards the optimum"


def test_digits_resumed_after_a_stop_ends_exactly_as_an_uninterrupted_run(
    laptop: Deployment,
) -> None:
    """The model is checkpointed with the state: a run stopped and resumed trains the same
    model, to the same validation accuracy, as one that never stopped."""
    args = ["examples.digits_sgd.experiment", "epochs=12", "lr=0.01", "seed=3"]
    whole = laptop.dbdict("run", "-w", "whole", *args)
    assert whole.returncode == 0, whole.stderr
    env = {**os.environ, **laptop.env, "PYTHONPATH": str(REPO)}
    stopped = subprocess.Popen([str(BIN / "dbdict"), "run", "-w", "parts", *args],
                               cwd=laptop.cwd, env=env, start_new_session=True)  # fmt: skip
    try:
        conf = laptop.cwd / "parts" / "current.conf"
        wait_until(lambda: conf.exists() and read_conf(conf).get("epoch", 0) >= 2, "two epochs")
        stopped.send_signal(signal.SIGTERM)
        assert stopped.wait(timeout=60) == 3, "INCOMPLETE"
    finally:
        kill_session(stopped)
    assert read_conf(conf)["epoch"] < 12
    resumed = laptop.dbdict("run", "-w", "parts", *args)
    assert resumed.returncode == 0, resumed.stderr
    final = read_conf(conf)
    assert final["epoch"] == 12
    assert final["accuracy"] == read_conf(laptop.cwd / "whole" / "current.conf")["accuracy"]
    curves = {name: sorted(read_points(str(laptop.cwd / name / METRICS_FILE)))
              for name in ("whole", "parts")}  # fmt: skip
    assert curves["parts"] == curves["whole"], "the same curves, each epoch once"
    assert [step for key, step, _ in curves["whole"] if key == "loss"] == list(range(1, 13))


def test_the_quick_start_is_examples_quadratic_and_runs_as_the_readme_says(
    laptop: Deployment,
) -> None:
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```python\n# examples/quadratic.py\n(.*?)```", readme, re.S)
    assert block, "the README's quick start shows examples/quadratic.py"
    assert block.group(1).strip() in (REPO / "examples" / "quadratic.py").read_text()
    command = re.search(r"^    \.venv/bin/dbdict (run examples\.quadratic\S* .*)$", readme, re.M)
    assert command, "the README gives the command that runs it"
    done = laptop.dbdict(*command.group(1).split())
    assert done.returncode == 0, done.stderr
    (workdir,) = [path for path in laptop.cwd.iterdir() if path.name.startswith("examples.")]
    state = read_conf(workdir / "current.conf")
    assert state["epoch"] == 100
    assert state["loss"] < 1e-12, "x reached the optimum"
