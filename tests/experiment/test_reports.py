"""`channel.report`: points kept in memory until a save, each (key, step) once in the job's
files however often a run is killed and resumed."""

from __future__ import annotations

import math
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest

from dbdict_celery import DD, Channel
from dbdict_celery.experiment.channel import StandardChannel
from dbdict_celery.experiment.metrics_file import METRICS_FILE, MetricsFile, read_points
from dbdict_celery.experiment.reports import Reports
from tests.conftest import DBDICT, dbdict_env, read_conf, wait_until


def test_each_key_is_a_curve_in_step_order_cut_where_it_goes_back() -> None:
    reports = Reports()
    for step in range(6):
        reports.add(step, {"loss": 10.0 - step, "acc": step / 10})
    reports.add(3, {"loss": 0.5})  # the experiment went back to step 3, for loss only
    reports.add(4, {"loss": 0.25})
    curves = {key: (curve.steps, curve.values) for key, curve in reports}
    assert curves == {
        "loss": ([0, 1, 2, 3, 4], [10.0, 9.0, 8.0, 0.5, 0.25]),
        "acc": ([0, 1, 2, 3, 4, 5], [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]),
    }


def test_numpy_scalars_nan_and_infinities_are_numbers() -> None:
    reports = Reports()
    reports.add(np.int64(2), {"a": np.float32(0.5), "b": math.nan, "c": -math.inf, "d": 3})
    values = {key: curve.values[0] for key, curve in reports}
    assert values["a"] == 0.5
    assert math.isnan(values["b"])
    assert (values["c"], values["d"]) == (-math.inf, 3.0)
    assert all(type(value) is float for value in values.values())


@pytest.mark.parametrize(
    ("step", "values", "error", "message"),
    [
        (-1, {"loss": 1.0}, ValueError, "a report's step must be 0 or more, not -1"),
        (1.5, {"loss": 1.0}, TypeError, "a report's step must be an integer, not float 1.5"),
        (True, {"loss": 1.0}, TypeError, "a report's step must be an integer, not True"),
        (1, {"loss": "0.3"}, TypeError, "metric 'loss' must be a number, not '0.3'"),
        (1, {"loss": [1, 2]}, TypeError, "metric 'loss' must be a number, not list"),
        (1, {"ok": 1.0, "": 2.0}, ValueError, "a metric's name must be 1 to 200 characters"),
    ],
)
def test_a_bad_report_names_its_fault_and_keeps_nothing(
    step: object, values: dict[str, object], error: type[Exception], message: str
) -> None:
    reports = Reports()
    with pytest.raises(error, match=message.replace("(", r"\(").replace("[", r"\[")):
        reports.add(step, values)
    assert not reports, "nothing of a bad report is kept, not even its good values"


def test_the_buffer_round_trips_as_json_with_nan() -> None:
    reports = Reports()
    reports.add(0, {"loss": math.nan, "acc": math.inf})
    again = Reports.from_json(reports.to_json())
    assert [(key, curve.steps) for key, curve in again] == [("loss", [0]), ("acc", [0])]
    assert math.isnan(again.curves["loss"].values[0])
    assert again.curves["acc"].values == [math.inf]


def _points(folder: Path) -> list[tuple[str, int, float]]:
    return sorted(read_points(str(folder / METRICS_FILE)))


def test_the_metrics_file_appends_and_rewrites_only_what_a_curve_takes_back(
    tmp_path: Path,
) -> None:
    first = Reports()
    for step in range(4):
        first.add(step, {"loss": float(step), "acc": math.nan})
    MetricsFile(str(tmp_path)).write(first)
    again = Reports()
    again.add(2, {"loss": 20.0})  # loss restarted at 2: its 2 and 3 go; acc stays whole
    MetricsFile(str(tmp_path)).write(again)  # a new run reads where the file ends
    points = _points(tmp_path)
    assert [(key, step) for key, step, _ in points] == [
        ("acc", 0), ("acc", 1), ("acc", 2), ("acc", 3), ("loss", 0), ("loss", 1), ("loss", 2)
    ]  # fmt: skip
    assert all(math.isnan(value) for key, _, value in points if key == "acc")
    assert [value for key, _, value in points if key == "loss"] == [0.0, 1.0, 20.0]


def reporting(state: DD, channel: Channel) -> None:
    """Reports its `steps` losses, saving after every third."""
    for step in range(int(state.get("next", 0)), int(state.steps)):
        channel.report(step, loss=step / 2)
        if step % 3 == 2:
            state.next = step + 1
            channel.save()


def test_a_standard_channel_keeps_the_curve_up_to_its_last_save_and_the_rest_at_the_end(
    tmp_path: Path,
) -> None:
    channel = StandardChannel(str(tmp_path / "job"), reporting, DD(steps=8))
    assert channel.run() is None
    points = _points(tmp_path / "job")
    assert [(step, value) for _, step, value in points] == [(n, n / 2) for n in range(8)]
    assert read_conf(tmp_path / "job" / "current.conf")["next"] == 6


def test_dbdict_run_killed_and_run_again_has_each_step_once_the_lost_ones_reported_again(
    tmp_path: Path,
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    args = ["run", "-w", "job", "tests.experiments.curve", "steps=60", f"marks='{marks}'",
            "pauses=37"]  # fmt: skip
    first = subprocess.Popen([DBDICT, *args], cwd=tmp_path, env=dbdict_env())
    try:
        wait_until(lambda: (marks / "at-37").exists(), "the run to reach step 37", timeout=60)
        assert read_conf(tmp_path / "job" / "current.conf")["next"] == 31
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    forced = [DBDICT, "run", "--force", *args[1:]]
    again = subprocess.run(forced, cwd=tmp_path, env=dbdict_env(), capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert again.returncode == 0, again.stderr
    points = _points(tmp_path / "job")
    assert [step for _, step, _ in points] == list(range(60)), "each step once, in order"
    run_of = {step: int(value) // 1000 for _, step, value in points}
    assert {step for step, run in run_of.items() if run == 1} == set(range(31))
    assert {step for step, run in run_of.items() if run == 2} == set(range(31, 60))
