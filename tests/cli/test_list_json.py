"""`dbdict list --json` gives scripts what the table view gives people: every column, or only
those chosen with --columns (and the id, to know which job each record is)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import dbdict


@pytest.fixture
def table(tmp_path: Path) -> str:
    """An embedded table of two jobs, one DONE with a result."""
    location = f"sqlite:///{tmp_path}/jobs.db/jobs"
    store = JobStore.open(location)
    params = [{"lr": 0.1, "model.kind": "cnn"}, {"lr": 0.01, "model.kind": "mlp"}]
    list(store.insert(NewJob("examples.quadratic.experiment", p) for p in params))
    run = store.book(host="node1", pid=7)
    assert run is not None
    store.finish(run, Status.DONE, {**run.state, "loss": 0.5})
    return location


def test_json_carries_only_the_chosen_columns_and_the_id(table: str, tmp_path: Path) -> None:
    chosen = "lr,status,loss,host,started_at"
    args = ["list", "--db", table, "--json", "--columns", chosen, "--sort", "id"]
    done = dbdict(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    first, second = json.loads(done.stdout)
    assert list(first) == ["id", "lr", "status", "loss", "host", "started_at"]
    assert "T" in first.pop("started_at"), "times in ISO 8601, as in the full records"
    assert first == {"id": 1, "lr": 0.1, "status": "DONE", "loss": 0.5, "host": "node1"}
    blank = dict.fromkeys(["loss", "host", "started_at"])  # no result yet, never run
    assert second == {"id": 2, "lr": 0.01, "status": "START", **blank}


def test_json_without_columns_gives_whole_records(table: str, tmp_path: Path) -> None:
    done = dbdict("list", "--db", table, "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert {"id", "status", "params", "state", "priority", "error"} <= set(records[0])


def test_empty_columns_are_refused_in_json_too(table: str, tmp_path: Path) -> None:
    done = dbdict("list", "--db", table, "--json", "--columns", ",", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == "dbdict: --columns needs at least one name"
