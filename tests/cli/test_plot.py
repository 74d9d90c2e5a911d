"""`dbdict plot`: a result against a parameter, the jobs' learning curves, and a timeline of
runs, as image files."""

from __future__ import annotations

import importlib.util
import math
import os
import statistics
from array import array
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dbdict_celery.cli import figures
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job, NewJob
from dbdict_celery.store.metrics import CurveColumns
from dbdict_celery.store.store import JobStore
from tests.conftest import REPO, dbdict

if TYPE_CHECKING:
    from dbdict_celery.cli.curves_figure import CurvesPlot

needs_matplotlib = pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="the plot extra: pip install -e '.[plot]'",
)

PNG = b"\x89PNG\r\n\x1a\n"


STEPS = 10


def loss(params: dict[str, Any], step: int) -> float:
    """The loss curve each job of the sweep reports: falling faster as lr grows, a little
    higher for each seed and for the mlp."""
    offset = 0.01 * int(params["seed"]) + (0.005 if params["model"] == "mlp" else 0)
    return 1 / (1 + 10 * float(params["lr"]) * step) + offset


def reported(
    params: dict[str, Any], steps: range, changed: dict[int, float] | None = None
) -> Reports:
    """The loss points of `steps`, those of `changed` (step: value) replaced."""
    reports = Reports()
    for step in steps:
        reports.add(step, {"loss": (changed or {}).get(step, loss(params, step))})
    return reports


@pytest.fixture
def table(tmp_path: Path) -> str:
    """An embedded table of a finished sweep: lr over three decades, two models, two seeds;
    one job preempted once, one failed, one still waiting. Each job that ran reported a
    loss curve of STEPS steps; the failed one (6) diverged, its curve ending on NaN after 5
    steps, and job 8 reported an infinite loss at step 3."""
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
            store.save(job, params, reports=reported(params, range(5)))
            store.finish(job, Status.START, reason="worker shutdown")
            job = store.book(job_id=job.id, host="node9", pid=999)
            assert job is not None
            store.save(job, params, reports=reported(params, range(5, STEPS)))
        elif number == 5:
            store.save(job, params, reports=reported(params, range(6), {5: math.nan}))
            store.finish(job, Status.FAILED, error="diverged")
            continue
        else:
            changed = {3: math.inf} if number == 7 else {}
            store.save(job, params, reports=reported(params, range(STEPS), changed))
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
        (("--curves", "acc"), "no job of the 17 chosen reported 'acc': see the curves a job "
         "reported with dbdict show ID"),
        (("--curves", "loss", "--where", "lr>5"), "no job of the 0 chosen reported 'loss'"),
        (("--log-y",), "--log-y, --aggregate and --best go with --curves KEY"),
        (("--x", "lr", "--y", "accuracy", "--best", "max"), "go with --curves KEY"),
        (("--curves", "loss", "--x", "lr"), "--curves draws KEY by step: it takes no --x or --y"),
        (("--timeline", "--curves", "loss"), "--timeline draws runs over time"),
        (("--curves", "loss", "--best", "least"), "Invalid value for '--best'"),
    ],
)  # fmt: skip
def test_a_plot_asked_wrong_is_one_line_and_exit_2(
    table: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    done = dbdict("plot", "--db", table, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert list(tmp_path.glob("*.png")) == []


@pytest.mark.parametrize(
    "args", [("--x", "lr", "--y", "accuracy"), ("--timeline",), ("--curves", "loss")]
)
def test_without_matplotlib_every_plot_gives_the_install_hint_in_one_line(
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


def curves_of(table: str, **options: Any) -> CurvesPlot:
    """The loss curves of every job of `table`, drawn as `dbdict plot --curves loss` does."""
    from dbdict_celery.cli.curves_figure import curves_plot

    store = JobStore.open(table)
    jobs = store.jobs()
    points = store.curve_columns("loss", [job.id for job in jobs])
    return curves_plot(jobs, points, "loss", "jobs", **options)


def sweep_params(table: str) -> dict[int, dict[str, Any]]:
    return {job.id: job.params for job in JobStore.open(table).jobs()}


@needs_matplotlib
def test_a_curves_plot_is_written_saying_what_it_left_out_and_the_best_job(
    table: str, tmp_path: Path
) -> None:
    done = dbdict("plot", "--db", table, "--curves", "loss", "--hue", "model", "-o", "curves.png",
                  cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG)
    assert done.stderr.splitlines() == [
        "left out 1 infinite value (1 job): a line cannot show them",
        f"best (min last loss): job 13, {loss(sweep_params(table)[13], STEPS - 1):.6g} at step 9",
        "wrote curves.png",
    ]
    done = dbdict("plot", "--db", table, "--curves", "loss", "--hue", "lr", "--aggregate",
                  "--log-y", "--best", "max", "--where", "model=mlp", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "jobs_loss_curves.png").read_bytes().startswith(PNG), "named after the key"
    assert "best (max last loss): job 4," in done.stderr
    done = dbdict("plot", "--db", table, "--curves", "loss", "-o", "curves.svg", cwd=tmp_path)
    svg = (tmp_path / "curves.svg").read_text()
    for label in ("loss by step: table jobs, 16 of 17 jobs", "best (min last loss): job 13"):
        assert label in svg


@needs_matplotlib
def test_curves_are_one_line_per_job_broken_by_nan_without_infinities(table: str) -> None:
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgb

    params = sweep_params(table)
    plot = curves_of(table, hue="model")
    axes: Any = plot.figure.axes[0]  # matplotlib's stubs type collections loosely
    (lines,) = axes.collections
    assert isinstance(lines, LineCollection), "every job's line in one collection"
    segments: list[Any] = [path.vertices for path in lines.get_paths()]  # NaN kept, as given
    assert len(segments) == 16, "one line per job that reported; job 17 never ran"
    for job_id, segment in zip(range(1, 17), segments, strict=True):
        steps, values = list(segment[:, 0]), list(segment[:, 1])
        if job_id == 6:  # diverged: its last point is a NaN
            assert steps == list(range(6))
            assert math.isnan(values[-1])
            continue
        kept = [step for step in range(STEPS) if (job_id, step) != (8, 3)]  # no infinity
        assert steps == kept, job_id
        assert values == pytest.approx([loss(params[job_id], step) for step in kept]), job_id
    colours = [
        to_rgb("C0" if params[job_id]["model"] == "cnn" else "C1") for job_id in range(1, 17)
    ]
    drawn_colours: Any = lines.get_colors()  # one RGBA row per line
    assert [to_rgb(colour) for colour in drawn_colours] == colours
    assert plot.notes == ["left out 1 infinite value (1 job): a line cannot show them"]
    assert plot.best is not None
    assert plot.best.job.id == 13, "the lowest last loss: lr 1.0, cnn, seed 0"
    (best,) = axes.lines
    assert best.get_label() == "best (min last loss): job 13"
    assert best.get_zorder() > lines.get_zorder(), "the best job on top"
    legend = [text.get_text() for text in axes.get_legend().get_texts()]
    assert legend == ["model=cnn (8 jobs)", "model=mlp (8 jobs)", "best (min last loss): job 13"]
    highest = curves_of(table, best="max").best
    assert highest is not None
    assert highest.job.id == 4, "the highest last loss; job 6 ends on NaN: never the best"


@needs_matplotlib
def test_a_numeric_hue_is_a_colormap_logarithmic_across_decades(table: str) -> None:
    from matplotlib import colormaps

    plot = curves_of(table, hue="lr")
    axes: Any
    axes, colorbar = plot.figure.axes
    assert colorbar.get_ylabel() == "lr"
    assert colorbar.get_yscale() == "log", "lr spans three decades"
    (lines,) = axes.collections
    colours = [tuple(colour[:3]) for colour in lines.get_colors()]
    assert colours[0] == pytest.approx(colormaps["viridis"](0.0)[:3]), "lr 0.001: the low end"
    assert colours[12] == pytest.approx(colormaps["viridis"](1.0)[:3]), "lr 1.0: the high end"
    assert colours[4] == pytest.approx(colormaps["viridis"](1 / 3)[:3]), "lr 0.01: a third up"
    assert axes.get_legend().get_texts()[-1].get_text().startswith("best"), "no entry per lr"


@needs_matplotlib
def test_aggregate_draws_a_mean_and_a_band_per_hue_value(table: str) -> None:
    from matplotlib.collections import LineCollection, PolyCollection

    params = sweep_params(table)
    plot = curves_of(table, hue="model", aggregate=True)
    axes: Any = plot.figure.axes[0]
    assert not any(isinstance(c, LineCollection) for c in axes.collections), "no line per job"
    bands: list[Any] = [c for c in axes.collections if isinstance(c, PolyCollection)]
    means = [line for line in axes.lines if line.get_label().startswith("model=")]
    assert [line.get_label() for line in means] == ["model=cnn (8 jobs)", "model=mlp (8 jobs)"]
    assert len(bands) == 2
    for model, mean, band in zip(("cnn", "mlp"), means, bands, strict=True):
        members = [
            job_id for job_id, p in params.items() if p.get("model") == model and job_id < 17
        ]
        assert list(mean.get_xdata()) == list(range(STEPS))
        for step in range(STEPS):  # NaN and infinite points left out of the mean
            values = [loss(params[job_id], step) for job_id in members
                      if (job_id, step) != (8, 3) and (job_id != 6 or step < 5)]  # fmt: skip
            expected, spread = statistics.fmean(values), statistics.pstdev(values)
            assert mean.get_ydata()[step] == pytest.approx(expected), (model, step)
            edge = [y for x, y in band.get_paths()[0].vertices if x == step]
            assert min(edge) == pytest.approx(expected - spread), (model, step)
            assert max(edge) == pytest.approx(expected + spread), (model, step)
    assert "mean ± 1 std per model" in axes.get_title()


def synthetic(jobs: int, steps: int, value: Any = None) -> tuple[list[Job], CurveColumns]:
    """`jobs` jobs of `steps` points each, made here rather than in a table; `value(job,
    step)` the value, else a falling curve."""
    made = [Job(i, Status.DONE, 1.0, "x.experiment", {}, {}, str(i)) for i in range(1, jobs + 1)]
    of = value or (lambda job, step: 1 / (1 + job * step))
    points = CurveColumns(array("q"), array("q"), array("d"))
    for job in made:
        for step in range(steps):
            points.job_ids.append(job.id)
            points.steps.append(step)
            points.values.append(of(job.id, step))
    return made, points


@needs_matplotlib
def test_lines_grow_fainter_as_jobs_grow_and_stay_one_collection(tmp_path: Path) -> None:
    from matplotlib.collections import LineCollection

    from dbdict_celery.cli.curves_figure import curves_plot

    alphas: list[float] = []
    for jobs, steps in ((1, 10), (16, 10), (500, 50), (1000, 1000)):
        plot = curves_plot(*synthetic(jobs, steps), "loss", "jobs")
        axes: Any = plot.figure.axes[0]
        (lines,) = axes.collections
        assert isinstance(lines, LineCollection)
        assert len(lines.get_segments()) == jobs
        assert len(axes.lines) == 1, "one line object for the best job, none per job"
        alpha = lines.get_alpha()
        assert alpha is not None
        alphas.append(alpha)
    assert alphas == sorted(alphas, reverse=True)
    assert alphas[0] >= 0.8, "a lone curve is plain to see"
    assert alphas[2] <= 0.15, "500 jobs: where many agree reads darker"
    figures.save(plot.figure, str(tmp_path / "big.png"))
    assert (tmp_path / "big.png").read_bytes().startswith(PNG)


@needs_matplotlib
def test_a_log_axis_leaves_out_values_at_or_below_zero_and_says_so() -> None:
    from matplotlib.path import Path as Drawn

    from dbdict_celery.cli.curves_figure import curves_plot

    values = {(1, 1): 0.0, (1, 2): -1.0, (2, 1): math.nan}
    jobs, points = synthetic(2, 4, lambda job, step: values.get((job, step), 1.0 + step))
    plot = curves_plot(jobs, points, "loss", "jobs", log_y=True)
    axes: Any = plot.figure.axes[0]
    assert axes.get_yscale() == "log"
    first, second = axes.collections[0].get_paths()
    assert list(first.vertices[:, 0]) == [0, 3]
    assert math.isnan(second.vertices[1, 1]), "a NaN is kept"
    drawn = [(list(xy), code) for xy, code in second.iter_segments()]
    assert drawn == [([0, 1], Drawn.MOVETO), ([2, 3], Drawn.MOVETO), ([3, 4], Drawn.LINETO)], (
        "the line breaks at the NaN: the point after it starts anew"
    )
    assert plot.notes == ["left out 2 non-positive values (1 job): a log axis cannot show them"]
    jobs, points = synthetic(1, 3, lambda job, step: -step)
    with pytest.raises(UsageError, match="no point of 'loss' can be drawn: left out 3"):
        curves_plot(jobs, points, "loss", "jobs", log_y=True)
