"""Reading the curves jobs report: `dbdict metrics` (one job's, as a table, JSON or CSV),
`dbdict show`'s curves section and `dbdict export --metrics` (every chosen job's, one row per
point, read back by pandas), with NaN and infinities intact on SQLite and Postgres."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas
import pytest

from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store import export as exporting
from dbdict_celery.store.job import Job, NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import dbdict

pytestmark = pytest.mark.integration  # each test runs on SQLite and on Postgres

NAN, INF = math.nan, math.inf
FIRST_LOSS = [1.0, 0.5, NAN, INF, -INF]  # steps 0-4, by the first run of job 1
RESUMED_LOSS = 0.25  # step 5, by its second run
SECOND_LOSS = [0.9, 0.7, 0.6]  # job 2, steps 0-2
SECOND_ACC = [0.5, NAN]  # job 2, steps 0-1: it ends on a NaN


def report(
    store: JobStore, job: Job, curves: Mapping[str, Sequence[float]], first: int = 0
) -> None:
    """Save `job` with `curves` reported from step `first` on, as its run would."""
    reports = Reports()
    for key, values in curves.items():
        for step, value in enumerate(values, start=first):
            reports.add(step, {key: value})
    store.save(job, dict(job.state), reports=reports)


def booked(store: JobStore, job_id: int) -> Job:
    job = store.book(job_id=job_id)
    assert job is not None
    return job


@pytest.fixture
def curves(location: str) -> str:
    """Three jobs: 1 (lr 0.1, cnn) reported loss (NaN and infinities among it) and acc, was
    preempted and its second run reported one more loss; 2 (lr 0.01, mlp) reported loss and
    an acc ending on NaN; 3 (lr 0.001) never ran."""
    store = JobStore.open(location)
    params: list[dict[str, Any]] = [
        {"lr": 0.1, "model": "cnn"},
        {"lr": 0.01, "model": "mlp"},
        {"lr": 0.001},
    ]
    list(store.insert(NewJob("examples.quadratic.experiment", p) for p in params))
    first = booked(store, 1)
    report(store, first, {"loss": FIRST_LOSS})
    report(store, first, {"acc": [0.1]})
    report(store, first, {"acc": [0.8]}, first=4)
    store.finish(first, Status.START, reason="worker shutdown")
    resumed = booked(store, 1)
    report(store, resumed, {"loss": [RESUMED_LOSS]}, first=5)
    store.finish(resumed, Status.DONE, {**resumed.state, "loss": RESUMED_LOSS})
    second = booked(store, 2)
    report(store, second, {"loss": SECOND_LOSS, "acc": SECOND_ACC})
    store.finish(second, Status.DONE, {**second.state, "loss": SECOND_LOSS[-1]})
    return location


def same(got: float, expected: float) -> bool:
    """Equal, NaN equal to NaN."""
    return math.isnan(got) if math.isnan(expected) else got == expected


def cells(table: str) -> list[list[str]]:
    """The body rows of a Rich table as printed, each a list of its cells."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in table.splitlines()
        if line.startswith("│")
    ]


def test_metrics_prints_a_row_per_step_and_a_column_per_key(curves: str, tmp_path: Path) -> None:
    done = dbdict("metrics", "--db", curves, "1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Curves of job 1 in ")
    header = next(line for line in done.stdout.splitlines() if line.startswith("┃"))
    assert header.replace("┃", " ").split() == ["step", "acc", "loss", "run"], "two runs: run shown"
    assert cells(done.stdout) == [
        ["0", "0.1", "1.0", "1"],
        ["1", "", "0.5", "1"],
        ["2", "", "nan", "1"],
        ["3", "", "inf", "1"],
        ["4", "0.8", "-inf", "1"],
        ["5", "", "0.25", "2"],
    ]
    one = dbdict("metrics", "--db", curves, "2", "--key", "acc", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert cells(one.stdout) == [["0", "0.5"], ["1", "nan"]], "one run: no run column"
    assert one.stderr == ""


def test_metrics_json_and_csv_keep_nan_and_infinities(curves: str, tmp_path: Path) -> None:
    expected = [("acc", 0, 0.1, 1), ("acc", 4, 0.8, 1)]
    expected += [("loss", step, value, 1) for step, value in enumerate(FIRST_LOSS)]
    expected += [("loss", 5, RESUMED_LOSS, 2)]
    as_json = dbdict("metrics", "--db", curves, "1", "--json", cwd=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    records = json.loads(as_json.stdout)
    assert [list(record) for record in records] == [["key", "step", "value", "run"]] * 8
    got = [(r["key"], r["step"], r["value"], r["run"]) for r in records]
    assert len(got) == len(expected)
    for point, wanted in zip(got, expected, strict=True):
        assert point[:2] == wanted[:2]
        assert point[3] == wanted[3]
        assert same(point[2], wanted[2]), (point, wanted)
    as_csv = dbdict("metrics", "--db", curves, "1", "--csv", "--key", "loss", cwd=tmp_path)
    assert as_csv.returncode == 0, as_csv.stderr
    assert as_csv.stdout.splitlines()[0] == "key,step,value,run"
    frame = pandas.read_csv(io.StringIO(as_csv.stdout))
    assert list(frame["step"]) == [0, 1, 2, 3, 4, 5]
    assert list(frame["run"]) == [1, 1, 1, 1, 1, 2]
    for got_value, value in zip(frame["value"], [*FIRST_LOSS, RESUMED_LOSS], strict=True):
        assert same(float(got_value), value)


def test_an_unknown_job_is_told_as_show_tells_it(curves: str, tmp_path: Path) -> None:
    shown = dbdict("show", "--db", curves, "404", cwd=tmp_path)
    for args in ([], ["--json"], ["--csv"]):
        done = dbdict("metrics", "--db", curves, "404", *args, cwd=tmp_path)
        assert (done.returncode, done.stderr) == (shown.returncode, shown.stderr)
        assert done.returncode == 2
        assert done.stderr.strip() == f"dbdict: no job 404 in {JobStore.open(curves).path}"
        assert done.stdout == ""


def test_a_job_without_curves_or_without_a_key_says_so_in_one_line(
    curves: str, tmp_path: Path
) -> None:
    none = (
        "job 3 reported no curves (an experiment reports them with channel.report(step, loss=...))"
    )
    table = dbdict("metrics", "--db", curves, "3", cwd=tmp_path)
    assert (table.returncode, table.stdout, table.stderr.strip()) == (0, "", none)
    as_json = dbdict("metrics", "--db", curves, "3", "--json", cwd=tmp_path)
    assert (as_json.returncode, json.loads(as_json.stdout), as_json.stderr.strip()) == (0, [], none)
    as_csv = dbdict("metrics", "--db", curves, "3", "--csv", cwd=tmp_path)
    assert (as_csv.returncode, as_csv.stdout, as_csv.stderr.strip()) == (
        0,
        "key,step,value,run\n",
        none,
    )
    typo = dbdict("metrics", "--db", curves, "1", "--key", "los", "--key", "acc", "--json",
                  cwd=tmp_path)  # fmt: skip
    assert typo.returncode == 0
    assert typo.stderr.strip() == "job 1 reported no 'los': its curves are acc, loss"
    assert {record["key"] for record in json.loads(typo.stdout)} == {"acc"}


def test_json_and_csv_together_are_a_usage_mistake(curves: str, tmp_path: Path) -> None:
    done = dbdict("metrics", "--db", curves, "1", "--json", "--csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "dbdict: --json and --csv: choose one"
    assert done.stdout == ""


def test_show_sums_up_each_curve(curves: str, tmp_path: Path) -> None:
    shown = dbdict("show", "--db", curves, "1", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "Curves (every point: dbdict metrics 1)" in shown.stdout
    rows = cells(shown.stdout)
    assert ["acc", "2", "4", "0.8"] in rows
    assert ["loss", "6", "5", "0.25"] in rows
    as_json = json.loads(dbdict("show", "--db", curves, "2", "--json", cwd=tmp_path).stdout)
    assert as_json["curves"]["loss"] == {"steps": 3, "last_step": 2, "last_value": 0.6}
    acc = as_json["curves"]["acc"]
    assert (acc["steps"], acc["last_step"]) == (2, 1)
    assert math.isnan(acc["last_value"]), "a curve ending on NaN says so"
    never = dbdict("show", "--db", curves, "3", cwd=tmp_path)
    assert never.returncode == 0, never.stderr
    assert "Curves" not in never.stdout, "nothing added for a job that reported none"
    assert (
        json.loads(dbdict("show", "--db", curves, "3", "--json", cwd=tmp_path).stdout)["curves"]
        == {}
    )


def points_of(frame: pandas.DataFrame) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in frame.itertuples(index=False)]


def expected_points(columns: Sequence[str] = ("lr", "model")) -> list[tuple[Any, ...]]:
    """Every point of the fixture's jobs as `export --metrics --columns lr,model` rows."""
    jobs: dict[int, dict[str, Any]] = {
        1: {"lr": 0.1, "model": "cnn"},
        2: {"lr": 0.01, "model": "mlp"},
    }
    curves = {
        1: {"acc": [(0, 0.1, 1), (4, 0.8, 1)],
            "loss": [*((s, v, 1) for s, v in enumerate(FIRST_LOSS)), (5, RESUMED_LOSS, 2)]},
        2: {"acc": [(s, v, 1) for s, v in enumerate(SECOND_ACC)],
            "loss": [(s, v, 1) for s, v in enumerate(SECOND_LOSS)]},
    }  # fmt: skip
    return [
        (job_id, *(jobs[job_id][c] for c in columns), key, step, value, run)
        for job_id, by_key in curves.items()
        for key, points in by_key.items()
        for step, value, run in points
    ]


def assert_same_points(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert len(got) == len(expected)
    for row, wanted in zip(got, expected, strict=True):
        *head, value, run = row
        assert (*head, int(run)) == (*wanted[:-2], wanted[-1]), (row, wanted)
        assert same(float(value), wanted[-2]), (row, wanted)


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_export_metrics_is_one_row_per_point_for_pandas(
    curves: str, tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"curves.{fmt}"
    done = dbdict("export", "--db", curves, "--metrics", "--columns", "lr,model",
                  "--format", fmt, "-o", str(out), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"exported 13 points to {out}"
    if fmt == "json":  # its default parser rounds the last digit (0.7000000000000001)
        frame = pandas.read_json(out, precise_float=True)
    else:
        frame = pandas.read_csv(out) if fmt == "csv" else pandas.read_parquet(out)
    assert list(frame.columns) == ["id", "lr", "model", "key", "step", "value", "run"]
    assert_same_points(points_of(frame), expected_points())


def test_export_metrics_takes_the_export_filters_and_keys(curves: str, tmp_path: Path) -> None:
    done = dbdict("export", "--db", curves, "--metrics", "--status", "done", "--where", "lr>0.05",
                  "--key", "loss", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pandas.read_csv(io.StringIO(done.stdout))
    assert list(frame.columns) == ["id", "key", "step", "value", "run"], "no --columns: the id"
    wanted = [row for row in expected_points(()) if row[0] == 1 and row[1] == "loss"]
    assert_same_points(points_of(frame), wanted)
    nothing = dbdict("export", "--db", curves, "--metrics", "--where", "lr<0.005", cwd=tmp_path)
    assert nothing.returncode == 0, nothing.stderr
    assert nothing.stdout == "id,key,step,value,run\n", "job 3 reported nothing"
    assert nothing.stderr.strip() == "exported 0 points"


def test_a_state_key_named_like_a_point_column_is_exported_as_state_key(
    curves: str, tmp_path: Path
) -> None:
    store = JobStore.open(curves)
    list(store.insert([NewJob("examples.quadratic.experiment", {"lr": 0.5, "step": 7})]))
    job = booked(store, 4)
    report(store, job, {"loss": [0.3, 0.2]})
    done = dbdict("export", "--db", curves, "--metrics", "--columns", "step,lr",
                  "--where", "lr=0.5", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pandas.read_csv(io.StringIO(done.stdout))
    assert list(frame.columns) == ["id", "state.step", "lr", "key", "step", "value", "run"]
    assert points_of(frame) == [(4, 7, 0.5, "loss", 0, 0.3, 1), (4, 7, 0.5, "loss", 1, 0.2, 1)]


def test_export_columns_chooses_the_columns_of_a_job_export_too(
    curves: str, tmp_path: Path
) -> None:
    done = dbdict("export", "--db", curves, "--columns", "model,status,lr,id", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = pandas.read_csv(io.StringIO(done.stdout))
    assert list(frame.columns) == ["id", "model", "status", "lr"], "the id first, once"
    assert list(frame["status"]) == ["DONE", "DONE", "START"]
    assert list(frame["lr"]) == [0.1, 0.01, 0.001]
    assert done.stderr.strip() == "exported 3 jobs"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "loss"], "dbdict export: --key chooses among the curves: add --metrics "
         "(see 'dbdict export --help')"),
        (["--metrics", "--where", "status=finished"], "dbdict: no status 'finished'"),
        (["--columns", "lr", "--where", "status=finished"], "dbdict: no status 'finished'"),
        (["--metrics", "--columns", ","], "dbdict: --columns needs at least one name"),
    ],
)  # fmt: skip
def test_an_export_asked_wrong_is_one_line_exit_2_and_no_file(
    curves: str, tmp_path: Path, args: list[str], message: str
) -> None:
    done = dbdict("export", "--db", curves, *args, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out.csv").exists()


def test_a_metric_export_reads_the_jobs_a_batch_at_a_time(
    curves: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exporting, "JOBS_PER_READ", 1)  # a batch per job: three reads
    out = io.StringIO()
    count = exporting.export(JobStore.open(curves), out, "csv", columns=["lr", "model"],
                             metrics=True)  # fmt: skip
    assert count == 13
    assert_same_points(points_of(pandas.read_csv(io.StringIO(out.getvalue()))), expected_points())


def test_metrics_on_a_missing_table_is_one_line_and_creates_none(
    location: str, tmp_path: Path
) -> None:
    missing = location.rpartition("/")[0] + "/no_such_table"
    done = dbdict("metrics", "--db", missing, "1", cwd=tmp_path)
    assert done.returncode == 2
    database = str(JobStore.open(location).path).rpartition("/")[0]
    assert done.stderr.strip() == f"dbdict: there is no job table {database}/no_such_table"


def test_plot_curves_reads_the_points_of_either_database(curves: str, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the plot extra: pip install -e '.[plot]'")
    done = dbdict("plot", "--db", curves, "--curves", "loss", "--hue", "model", "-o", "loss.png",
                  cwd=tmp_path, MPLCONFIGDIR=str(tmp_path / "mpl"))  # fmt: skip  # as on first use
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "loss.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert done.stderr.splitlines() == [
        "left out 2 infinite values (1 job): a line cannot show them",
        f"best (min last loss): job 1, {RESUMED_LOSS:.6g} at step 5",
        "wrote loss.png",
    ]
