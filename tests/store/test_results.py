"""Getting results out: export read back by pandas, the SQL view read by psql and sqlite3,
and a job's captured output."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas
import pytest

from dbdict_celery.config import table_path
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import dbdict, start_dbdict, wait_until

pytestmark = pytest.mark.integration

EXPERIMENT = "examples.count.experiment"


def filled(location: str) -> dict[int, dict[str, Any]]:
    """Six jobs: four DONE with results, one FAILED, one never run; their expected states."""
    store = JobStore.open(location)
    params = [{"lr": lr, "model.kind": kind, "labels": [kind, "x"]}
              for lr in (0.1, 0.01, 0.001) for kind in ("cnn", "mlp")]  # fmt: skip
    (batch,) = store.insert(NewJob(EXPERIMENT, p) for p in params)
    expected: dict[int, dict[str, Any]] = {}
    for inserted in batch[:5]:
        run = store.book(inserted.id)
        assert run is not None
        if inserted.id == batch[4].id:
            store.finish(run, Status.FAILED, run.state, error="Traceback: boom")
            expected[run.id] = dict(run.state)
            continue
        state = {**run.state, "result.error": run.state["lr"] * 2, "result.best": True}
        store.finish(run, Status.DONE, state)
        expected[run.id] = state
    expected[batch[5].id] = dict(batch[5].job.params)
    return expected


def test_csv_export_reads_back_in_pandas_unchanged(location: str, tmp_path: Path) -> None:
    expected = filled(location)
    done = dbdict("export", "--db", location, "-o", "out.csv", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported 6 jobs to out.csv" in done.stderr
    frame = pandas.read_csv(tmp_path / "out.csv")
    assert len(frame) == 6
    assert {"id", "status", "lr", "model.kind", "result.error", "result.best", "labels"} <= set(
        frame.columns
    )
    for row in frame.to_dict("records"):
        state = expected[row["id"]]
        assert row["lr"] == state["lr"]
        assert row["model.kind"] == state["model.kind"]
        assert row["labels"] == f'["{state["model.kind"]}", "x"]'
        if "result.error" in state:
            assert (row["status"], row["result.error"]) == ("DONE", state["result.error"])
        else:
            assert math.isnan(row["result.error"])
    assert set(frame["status"]) == {"DONE", "FAILED", "START"}


def test_export_filters_and_the_other_formats(location: str, tmp_path: Path) -> None:
    expected = filled(location)
    done = dbdict("export", "--db", location, "--format", "json", "--where", "result.error<0.1",
                  "--status", "done", "-o", "out.json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    frame = pandas.read_json(tmp_path / "out.json")
    wanted = {i for i, s in expected.items() if s.get("result.error", 1) < 0.1}
    assert set(frame["id"]) == wanted
    parquet = dbdict("export", "--db", location, "--format", "parquet", "-o", "out.parquet",
                     "--where", "model.kind=cnn", cwd=tmp_path)  # fmt: skip
    assert parquet.returncode == 0, parquet.stderr
    cnn = pandas.read_parquet(tmp_path / "out.parquet")
    assert sorted(cnn["id"]) == sorted(i for i, s in expected.items() if s["model.kind"] == "cnn")
    stdout = dbdict("export", "--db", location, "--where", "lr>5", cwd=tmp_path)
    assert stdout.stdout.splitlines()[0].startswith("id,status,priority,experiment")
    assert len(stdout.stdout.splitlines()) == 1, "a header and no job"


def test_list_filters_sorts_and_shows_chosen_columns(location: str, tmp_path: Path) -> None:
    expected = filled(location)
    args = ["list", "--db", location, "--where", "lr>0.005", "--status", "done"]
    listed = dbdict(*args, "--sort", "-result.error", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    jobs = json.loads(listed.stdout)
    wanted = [i for i, s in expected.items() if s["lr"] > 0.005 and "result.error" in s]
    assert sorted(job["id"] for job in jobs) == sorted(wanted)
    errors = [job["state"]["result.error"] for job in jobs]
    assert errors == sorted(errors, reverse=True)
    table = dbdict(*args, "--columns", "id,model.kind,result.error", cwd=tmp_path)
    assert table.stdout.splitlines()[1].split() == ["┃", "id", "┃", "model.kind", "┃",
                                                     "result.error", "┃"]  # fmt: skip
    assert f"{len(wanted)} jobs" in table.stderr
    as_printed = dbdict("list", "--db", location, "--status", "DONE", "--json", cwd=tmp_path)
    assert as_printed.returncode == 0, "a status as tables print it (DONE) is accepted too"
    assert len(json.loads(as_printed.stdout)) == sum("result.error" in s for s in expected.values())
    typo = dbdict("list", "--db", location, "--columns", "id,lrr", cwd=tmp_path)
    assert "no job has 'lrr': that column is blank" in typo.stderr
    mine = dbdict("list", "--db", location, "--experiment", EXPERIMENT, "--json", cwd=tmp_path)
    assert len(json.loads(mine.stdout)) == len(expected), "--experiment: the jobs of one"
    other = dbdict("list", "--db", location, "--experiment", "other.experiment", "--json",
                   cwd=tmp_path)  # fmt: skip
    assert json.loads(other.stdout) == []
    injected = dbdict("list", "--db", location, "--sort", "x; drop table jobs", cwd=tmp_path)
    assert injected.returncode == 2
    assert "malformed sort key 'x; drop table jobs'" in injected.stderr
    bad = dbdict("list", "--db", location, "--where", "lr>>1", cwd=tmp_path)
    assert bad.returncode == 2
    assert "malformed filter" in bad.stderr or "compares numbers" in bad.stderr


def test_show_gives_the_whole_row_and_the_last_traceback(location: str, tmp_path: Path) -> None:
    expected = filled(location)
    failed_id = next(i for i, s in expected.items() if "result.error" not in s and i != 6)
    shown = dbdict("show", "--db", location, str(failed_id), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "FAILED" in shown.stdout
    assert "Traceback: boom" in shown.stdout
    missing = dbdict("show", "--db", location, "404", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"dbdict: no job 404 in {JobStore.open(location).path}"


@pytest.mark.parametrize(
    "command",
    [["status"], ["list"], ["show", "1"], ["export"], ["view", "v"], ["logs", "1"],
     ["cancel", "1"], ["requeue", "1"], ["reconcile"]],
)  # fmt: skip
def test_a_missing_table_is_one_clear_line_and_is_not_created(
    location: str, tmp_path: Path, command: list[str]
) -> None:
    missing = location.rpartition("/")[0] + "/no_such_table"
    done = dbdict(command[0], "--db", missing, *command[1:], cwd=tmp_path)
    assert done.returncode == 2
    database = str(JobStore.open(location).path).rpartition("/")[0]
    assert done.stderr.strip() == f"dbdict: there is no job table {database}/no_such_table"
    from sqlalchemy import inspect

    assert not inspect(JobStore.open(location).engine).has_table("no_such_table")


def test_a_job_id_that_is_not_there_is_one_clear_line(location: str, tmp_path: Path) -> None:
    filled(location)
    path = JobStore.open(location).path
    for command in (["show"], ["logs"], ["cancel"], ["requeue"]):
        done = dbdict(command[0], "--db", location, "12345", cwd=tmp_path)
        assert done.returncode == 2
        assert done.stderr.strip() == f"dbdict: no job 12345 in {path}"


def test_the_sql_view_has_a_typed_column_per_key(location: str, tmp_path: Path) -> None:
    expected = filled(location)
    done = dbdict("view", "--db", location, "results", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "lr (number)" in done.stdout
    assert "result_error (number)" in done.stdout
    assert "model_kind (text)" in done.stdout
    query = "SELECT id, lr, model_kind, result_error FROM results ORDER BY id"
    rows = _sql(location, query)
    assert len(rows) == 6
    for job_id, lr, kind, error in rows:
        state = expected[int(job_id)]
        assert (float(lr), kind) == (state["lr"], state["model.kind"])
        assert error == ("" if "result.error" not in state else _as_text(state["result.error"]))
    below = _sql(location, "SELECT id FROM results WHERE result_error < 0.01 ORDER BY id")
    assert [int(row[0]) for row in below] == sorted(
        i for i, s in expected.items() if s.get("result.error", 1) < 0.01
    )
    again = dbdict("view", "--db", location, "results", cwd=tmp_path)
    assert again.returncode == 0, "remade, not refused"


def test_whole_numbers_are_integer_columns_and_mixed_numbers_double(
    location: str, tmp_path: Path
) -> None:
    store = JobStore.open(location)
    list(store.insert(NewJob(EXPERIMENT, {"epochs": n, "scale": n if n % 2 else n + 0.5})
                      for n in (1, 2, 3)))  # fmt: skip
    done = dbdict("view", "--db", location, "typed", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "epochs (integer)" in done.stdout
    assert "scale (number)" in done.stdout, "integers among floats: double precision"
    ((total, scaled),) = _sql(location, "SELECT sum(epochs), sum(scale) FROM typed")
    assert total == "6", "summed as integers, not 6.0"
    assert float(scaled) == 6.5
    list(store.insert([NewJob(EXPERIMENT, {"epochs": 2.5, "scale": 1})]))  # after the view
    rows = _sql(location, "SELECT id, epochs FROM typed ORDER BY id")
    assert [epochs for _, epochs in rows] == ["1", "2", "3", ""], "not a whole number: NULL"


def test_a_view_name_is_validated(location: str, tmp_path: Path) -> None:
    for bad in ("x;drop table jobs", "1x"):
        done = dbdict("view", "--db", location, bad, cwd=tmp_path)
        assert done.returncode == 2
        assert "invalid table name" in done.stderr


def _sql(location: str, query: str) -> list[list[str]]:
    """Run a query with the database's own command-line client."""
    if location.startswith("sqlite"):
        database = location[len("sqlite:///") :].rpartition("/")[0]
        command = ["sqlite3", "-separator", "|", database, query]
    else:
        url = table_path(location).url.set(drivername="postgresql")
        command = ["psql", url.render_as_string(hide_password=False), "-At", "-c", query]
    done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=30)
    return [line.split("|") for line in done.stdout.splitlines()]


def _as_text(value: float) -> str:
    return repr(value)


@pytest.mark.parametrize("stream", ["stdout", "stderr"])
def test_logs_of_a_finished_job(location: str, tmp_path: Path, stream: str) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.noisy", cwd=tmp_path)
    ran = dbdict("sql", "--db", location, "-n", "1", str(tmp_path / "root"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    args = ["logs", "--db", location, "1"] + (["--stderr"] if stream == "stderr" else [])
    done = dbdict(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"to {stream}\n"


def test_logs_follow_a_running_job_to_its_end(location: str, tmp_path: Path) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, EXPERIMENT, "target=30",
           "interval=0.1", cwd=tmp_path)  # fmt: skip
    assert dbdict("logs", "--db", location, "1", cwd=tmp_path).stderr.strip() == (
        "job 1 has not run yet: no stdout"
    )
    runner = start_dbdict("sql", "--db", location, "-n", "1", str(tmp_path / "root"), cwd=tmp_path)
    store = JobStore.open(location)
    wait_until(lambda: store.get(1).status == Status.RUNNING, "the job to start")
    follow = dbdict("logs", "--db", location, "--follow", "1", cwd=tmp_path)
    runner.communicate(timeout=60)
    assert follow.returncode == 0, follow.stderr
    assert follow.stdout.splitlines() == [f"step {n}" for n in range(1, 31)]
    assert dbdict("logs", "--db", location, "99", cwd=tmp_path).returncode == 2
