"""`dbdict plot`: a result against a parameter, and a timeline of runs, as image files."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import REPO, dbdict

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="the plot extra: pip install -e '.[plot]'",
)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def table(tmp_path: Path) -> str:
    """An embedded table of a finished sweep: lr over three decades, two models, two seeds;
    one job preempted once, one failed, one still waiting."""
    location = f"sqlite:///{tmp_path}/jobs.db/jobs"
    store = JobStore.open(location)
    sweep: list[dict[str, Any]] = [
        {"lr": lr, "model": model, "seed": seed, "layers": [64] * (1 + seed)}
        for lr in (0.001, 0.01, 0.1, 1.0)
        for model in ("cnn", "mlp")
        for seed in (0, 1)
    ]
    list(store.insert(NewJob("examples.quadratic.experiment", params) for params in sweep))
    for number, params in enumerate(sweep):
        job = store.book(host=f"node{number % 3}", pid=100 + number % 2)
        assert job is not None
        if number == 0:  # preempted once, then finished on another worker
            store.finish(job, Status.START, reason="worker shutdown")
            job = store.book(job_id=job.id, host="node9", pid=999)
            assert job is not None
        if number == 5:
            store.finish(job, Status.FAILED, error="diverged")
            continue
        accuracy = 0.9 - 0.1 * float(params["lr"]) + (0.02 if params["model"] == "cnn" else 0)
        store.finish(job, Status.DONE, {**params, "accuracy": accuracy})
    list(store.insert([NewJob("examples.quadratic.experiment", {"lr": 0.5, "model": "cnn"})]))
    return location


@needs_matplotlib
def test_a_sweep_plot_and_a_timeline_are_written_as_images(table: str, tmp_path: Path) -> None:
    done = dbdict("plot", "--db", table, "--x", "lr", "--y", "accuracy", "--hue", "model",
                  "-o", "sweep.png", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "sweep.png").read_bytes().startswith(PNG)
    done = dbdict("plot", "--db", table, "--timeline", "-o", "runs.svg", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    svg = (tmp_path / "runs.svg").read_text()
    assert svg.lstrip().startswith("<?xml")
    assert "<svg" in svg
    for label in ("node0:100", "node1:101", "node9:999", "worker (host:pid)",
                  "17 runs of 16 jobs", "incomplete", "failed", "done"):  # fmt: skip
        assert label in svg, f"the timeline names {label}"
    done = dbdict("plot", "--db", table, "--x", "lr", "--y", "accuracy", "--hue", "layers",
                  "-o", "layers.svg", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "layers=[64, 64]" in (tmp_path / "layers.svg").read_text(), "a list as a group"


@needs_matplotlib
def test_a_plot_without_a_name_is_named_after_the_table_and_keys(
    table: str, tmp_path: Path
) -> None:
    done = dbdict("plot", "--db", table, "--x", "lr", "--y", "accuracy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "jobs_accuracy_by_lr.png").read_bytes().startswith(PNG)
    svg = dbdict("plot", "--db", table, "--x", "lr", "--y", "accuracy", "-o", "s.svg",
                 cwd=tmp_path)  # fmt: skip
    assert svg.returncode == 0
    text = (tmp_path / "s.svg").read_text()
    assert "accuracy against lr: table jobs, 15 of 17 jobs" in text, "title: what, which table"
    assert "FAILED" not in text, "the failed job has no accuracy: it is left out"


@needs_matplotlib
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--x", "lr", "--y", "acuracy"), "no job has numbers for both 'lr' and 'acuracy'"),
        (("--x", "lr"), "give --x KEY and --y KEY"),
        (("--timeline", "--x", "lr"), "--timeline draws runs over time"),
        (("--x", "lr", "--y", "accuracy", "-o", "plot.jpeg"), "end it with .png, .svg or .pdf"),
    ],
)
def test_a_plot_asked_wrong_is_one_line_and_exit_2(
    table: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = dbdict("plot", "--db", table, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.glob("*.png")) == []


@pytest.mark.parametrize("args", [("--x", "lr", "--y", "accuracy"), ("--timeline",)])
def test_without_matplotlib_either_plot_gives_the_install_hint_in_one_line(
    table: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    shim = tmp_path / "shim"  # first on the path: `import matplotlib` fails as if not installed
    shim.mkdir()
    (shim / "matplotlib.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'matplotlib'\", name='matplotlib')\n"
    )
    hidden = os.pathsep.join([str(shim), str(REPO)])
    done = dbdict("plot", "--db", table, *args, "-o", "plot.png", cwd=tmp_path, PYTHONPATH=hidden)
    assert done.returncode == 1
    assert done.stderr.strip() == "dbdict: plot needs matplotlib: pip install 'dbdict-celery[plot]'"
    assert not (tmp_path / "plot.png").exists()
