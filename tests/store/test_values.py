"""What a state may hold: NaN and infinities are results; a value the table cannot keep ends
the job FAILED naming it, with the row and files left at the last good save."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas
import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.values import decode, encode
from tests.conftest import dbdict, read_conf

pytestmark = pytest.mark.integration

VALUES = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf, "1.5": 1.5, "-2": -2}


def test_non_finite_floats_round_trip_through_the_encoding() -> None:
    state = {"a": math.nan, "b": [1.0, -math.inf, {"c": math.inf}], "d": "NaN", "e": {}}
    back = decode(json.loads(json.dumps(encode(state), allow_nan=False)))
    assert math.isnan(back["a"])
    assert back["b"][:2] == [1.0, -math.inf]
    assert back["b"][2] == {"c": math.inf}
    assert (back["d"], back["e"]) == ("NaN", {})


@pytest.fixture
def diverged(location: str, tmp_path: Path) -> dict[str, int]:
    """One DONE job per value in VALUES, recorded as `result` by a real `dbdict sql` run;
    the job id of each."""
    for text in VALUES:
        done = dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.record",
                      f"value={text}", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    ran = dbdict("sql", "--db", location, "-n", "0", str(tmp_path / "root"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    jobs = JobStore.open(location).jobs()
    assert [job.status for job in jobs] == [Status.DONE] * len(VALUES)
    return {text: job.id for text, job in zip(VALUES, jobs, strict=True)}


def test_nan_and_infinities_save_and_read_back(location: str, diverged: dict[str, int]) -> None:
    store = JobStore.open(location)
    for text, job_id in diverged.items():
        result = store.get(job_id).state["result"]
        expected = VALUES[text]
        assert math.isnan(result) if math.isnan(expected) else result == expected, text


def test_nan_and_infinities_filter_and_sort(
    location: str, diverged: dict[str, int], tmp_path: Path
) -> None:
    def listed(*args: str) -> list[int]:
        done = dbdict("list", "--db", location, "--json", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        return [job["id"] for job in json.loads(done.stdout)]

    assert listed("--where", "result=nan") == [diverged["nan"]]
    assert listed("--where", "result=-inf") == [diverged["-inf"]]
    assert sorted(listed("--where", "result>1")) == sorted([diverged["inf"], diverged["1.5"]])
    assert listed("--where", "result<0") == [diverged["-inf"], diverged["-2"]]
    order = ["-inf", "-2", "1.5", "inf", "nan"]
    assert listed("--sort", "result") == [diverged[text] for text in order]
    assert listed("--sort", "-result") == [diverged[text] for text in reversed(order[:-1])] + [
        diverged["nan"]
    ], "NaN sorts after every number, both ways"


@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_nan_and_infinities_export_for_pandas(
    location: str, diverged: dict[str, int], tmp_path: Path, fmt: str
) -> None:
    out = tmp_path / f"out.{fmt}"
    done = dbdict("export", "--db", location, "--format", fmt, "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    frame = {"csv": pandas.read_csv, "json": pandas.read_json, "parquet": pandas.read_parquet}[fmt](
        out
    )
    results = dict(zip(frame["id"], frame["result"], strict=True))
    for text, job_id in diverged.items():
        expected = VALUES[text]
        got = float(results[job_id])
        assert math.isnan(got) if math.isnan(expected) else got == expected, (fmt, text)


def test_nan_and_infinities_in_a_view(
    location: str, diverged: dict[str, int], tmp_path: Path
) -> None:
    done = dbdict("view", "--db", location, "diverged", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "result (number)" in done.stdout
    store = JobStore.open(location)
    with store.engine.connect() as connection:
        rows: dict[int, float | None] = dict(
            connection.exec_driver_sql("SELECT id, result FROM diverged").all()
        )
    assert rows[diverged["inf"]] == math.inf
    assert rows[diverged["-inf"]] == -math.inf
    assert rows[diverged["-2"]] == -2
    nan = rows[diverged["nan"]]
    if store.dialect == "sqlite":
        assert nan is None, "SQLite has no NaN: it reads as NULL"
    else:
        assert nan is not None
        assert math.isnan(nan)


@pytest.mark.parametrize(
    ("kind", "named"),
    [("set", "a set"), ("bytes", "a bytes"), ("array", "a numpy.ndarray"),
     ("int_keys", "the key 1"), ("int_keys_in_a_list", "a dict with a int key"),
     ("nul", "NUL character")],
)  # fmt: skip
@pytest.mark.parametrize("at", ["save", "end"])
def test_a_value_the_table_cannot_keep_fails_the_job_naming_it(
    location: str, tmp_path: Path, kind: str, named: str, at: str
) -> None:
    done = dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.unstorable",
                  f"kind={kind}", f"at={at}", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    root = tmp_path / "root"
    ran = dbdict("sql", "--db", location, "-n", "1", str(root), cwd=tmp_path)
    assert ran.returncode == 1, "the runner's exit code says a job failed"
    assert "1 of the jobs run here FAILED" in ran.stderr
    store = JobStore.open(location)
    (job,) = store.jobs()
    assert job.status == Status.FAILED
    assert job.error is not None
    assert "cannot store 'value" in job.error, job.error
    assert named in job.error
    assert job.state["step"] == 1, "the row keeps the last good save"
    assert "value" not in job.state
    files = root / store.path.dbname / store.path.table / str(job.id)
    saved = read_conf(files / "current.conf")
    assert saved["step"] == 1
    assert "value" not in saved, "the files keep the last good save"


def test_a_state_above_the_size_limit_fails_the_job_saying_so(
    location: str, tmp_path: Path
) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.big",
           "size=2000000", cwd=tmp_path)  # fmt: skip
    ran = dbdict("sql", "--db", location, "-n", "1", str(tmp_path / "root"), cwd=tmp_path,
                 DBDICT_MAX_STATE_MB="1")  # fmt: skip
    assert ran.returncode == 1
    (job,) = JobStore.open(location).jobs()
    assert job.status == Status.FAILED
    assert job.error is not None
    assert "DBDICT_MAX_STATE_MB" in job.error
    assert "'blob'" in job.error
    assert "blob" not in job.state


def test_a_large_value_is_shown_cut_and_quickly(location: str, tmp_path: Path) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.big",
           "size=8000000", cwd=tmp_path)  # fmt: skip
    ran = dbdict("sql", "--db", location, "-n", "1", str(tmp_path / "root"), cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    for command in (["show", "1"], ["list"]):
        done = dbdict(*command, "--db", location, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "8,000,000 characters in all" in done.stdout
        assert len(done.stdout) < 100_000
