"""A command pays only for what it uses: `dbdict run` and `--help` load no Celery and create
no DBDICT_HOME, while a schedule loads what it needs when it needs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import dbdict_env

HEAVY = ("celery", "kombu", "sqlalchemy", "psycopg", "matplotlib", "numpy", "pandas", "pyarrow")


def imported_modules(*args: str, home: Path, cwd: Path) -> tuple[set[str], str]:
    """Run the `dbdict` entry point with ARGS under `python -X importtime`; the top-level
    names of every module it imported, and what it printed on stdout."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c",
         "from dbdict_celery.cli import main; main()", *args],
        cwd=cwd,
        env=dbdict_env(DBDICT_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    names = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "dbdict_celery" in names, "importtime printed nothing: the check would be empty"
    return names, done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--dry-run", "examples.count.experiment", "target=2", "interval=0"],
        ["run", "-w", "work", "examples.count.experiment", "target=2", "interval=0"],
        ["--help"],
        ["help"],
        ["help", "schedule"],
        ["schedule", "--help"],
        ["help", "metrics"],
        ["plot", "--help"],
        ["export", "--help"],
    ],
)
def test_local_runs_and_help_load_no_celery_and_create_no_home(
    args: list[str], tmp_path: Path
) -> None:
    home = tmp_path / "home"
    names, _ = imported_modules(*args, home=home, cwd=tmp_path)
    assert not names & set(HEAVY), f"dbdict {' '.join(args)} imported {names & set(HEAVY)}"
    assert not home.exists(), f"dbdict {' '.join(args)} created DBDICT_HOME"


def test_every_command_is_listed_and_loads(tmp_path: Path) -> None:
    _, listing = imported_modules("help", home=tmp_path / "home", cwd=tmp_path)
    commands = ["run", "filemerge", "schedule", "worker", "sql", "status", "list", "show",
                "metrics", "diff", "cancel", "requeue", "reconcile", "export", "view", "logs",
                "plot", "help"]  # fmt: skip
    for command in commands:
        assert f"\n  {command} " in listing, command


def test_a_schedule_loads_celery_and_makes_its_home_when_it_needs_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    names, _ = imported_modules("schedule", "examples.count.experiment", "target=2",
                                home=home, cwd=tmp_path)  # fmt: skip
    assert {"celery", "kombu", "sqlalchemy"} <= names
    assert (home / "jobs.db").exists()
    assert (home / "broker.db").exists()
