"""Job columns and state keys are never confused, whatever a parameter is called."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import dbdict

pytestmark = pytest.mark.integration

LIKE_COLUMNS = ["id=999", "status=running", "priority=7", "experiment=other", "attempts=5"]


@pytest.fixture
def named_like_columns(location: str, tmp_path: Path) -> str:
    """Two START jobs whose parameters are named like job columns."""
    for n in (1, 2):
        done = dbdict("schedule", "--no-enqueue", "--db", location, "examples.count.experiment",
                      *LIKE_COLUMNS, f"n={n}", cwd=tmp_path)  # fmt: skip
        assert done.returncode == 0, done.stderr
    return location


def listed(location: str, tmp_path: Path, *args: str) -> list[int]:
    done = dbdict("list", "--db", location, "--json", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [job["id"] for job in json.loads(done.stdout)]


def test_a_filter_on_a_column_name_reads_the_column(
    named_like_columns: str, tmp_path: Path
) -> None:
    location = named_like_columns
    assert listed(location, tmp_path, "--where", "id=999") == []
    assert listed(location, tmp_path, "--where", "id=2") == [2]
    assert listed(location, tmp_path, "--where", "status=start") == [1, 2]
    assert listed(location, tmp_path, "--where", "status=running") == []
    assert listed(location, tmp_path, "--where", "attempts<1") == [1, 2]
    assert listed(location, tmp_path, "--where", "priority>5") == []


def test_state_dot_key_reads_the_parameter(named_like_columns: str, tmp_path: Path) -> None:
    location = named_like_columns
    assert listed(location, tmp_path, "--where", "state.id=999") == [1, 2]
    assert listed(location, tmp_path, "--where", "state.status=running", "--where", "n=2") == [2]
    assert listed(location, tmp_path, "--where", "state.priority>5") == [1, 2]
    assert listed(location, tmp_path, "--sort", "-n") == [2, 1]


def test_the_table_shows_each_once_with_its_own_value(
    named_like_columns: str, tmp_path: Path
) -> None:
    done = dbdict("list", "--db", named_like_columns, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    header = [cell for cell in done.stdout.splitlines()[1].split("┃") if cell.strip()]
    names = [cell.strip() for cell in header]
    assert len(names) == len(set(names)), names
    assert {"id", "status", "state.id", "state.status", "state.priority"} <= set(names)
    chosen = dbdict("list", "--db", named_like_columns, "--columns", "id,state.id,status,attempts,"
                    "state.attempts", cwd=tmp_path)  # fmt: skip
    rows = [line.split("│") for line in chosen.stdout.splitlines() if "│" in line]
    assert [cell.strip() for cell in rows[0][1:-1]] == ["1", "999", "START", "0", "5"]


def test_a_bad_status_name_in_a_filter_is_one_line(named_like_columns: str, tmp_path: Path) -> None:
    done = dbdict("list", "--db", named_like_columns, "--where", "status=sleeping", cwd=tmp_path)
    assert done.returncode == 2
    assert "no status 'sleeping'" in done.stderr


@pytest.mark.parametrize(
    ("condition", "message"),
    [("attempts=abc", "attempts holds int values"),
     ("cancel_requested=1", "cancel_requested holds bool values"),
     ("created_at=2024", "cannot compare the times in created_at")],
)  # fmt: skip
def test_a_value_of_the_wrong_type_for_a_column_is_one_line(
    named_like_columns: str, tmp_path: Path, condition: str, message: str
) -> None:
    done = dbdict("list", "--db", named_like_columns, "--where", condition, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
