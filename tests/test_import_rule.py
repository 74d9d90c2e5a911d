"""The Python API finds experiments by the `dbdict` command's rule: from the current
directory first, then the rest of the Python path, wherever the calling script lives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import dbdict_env

EXPERIMENT = """\
from dbdict_celery import make


def experiment(state, channel):
    state.made = make(state.thing)  # a builder of a module not imported yet, in the same folder
"""
BUILDERS = """\
def twice(x):
    return 2 * x
"""
SCRIPT = """\
import sys

import dbdict_celery as dbdict

before = list(sys.path)
sweep = dbdict.plan("mine.experiment", ["thing::builders.twice", "thing.x=choice(1, 2)"])
print(len(sweep), "jobs planned")
assert sys.path == before, "planning leaves the path as it was"
result = dbdict.run_cmdline(
    "mine.experiment", ["thing::builders.twice", "thing.x=21"], dbdict.RunOptions(workdir="w")
)
print(result.status, result.state.made)
"""


def _run_script(script: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=cwd,
        env=dbdict_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _experiment_in(folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    (folder / "mine.py").write_text(EXPERIMENT, encoding="utf-8")
    (folder / "builders.py").write_text(BUILDERS, encoding="utf-8")


def test_a_script_run_from_the_experiments_folder_plans_and_runs_them(tmp_path: Path) -> None:
    """`cd project && python ~/scripts/sweep.py`: the command run there would find them."""
    project, scripts = tmp_path / "project", tmp_path / "scripts"
    _experiment_in(project)
    scripts.mkdir()
    (scripts / "sweep.py").write_text(SCRIPT, encoding="utf-8")
    done = _run_script(scripts / "sweep.py", cwd=project)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 jobs planned", "2 42"], "DONE, built from cwd"
    assert (project / "w" / "current.conf").is_file(), "the workdir is relative to cwd too"


def test_a_script_beside_its_experiments_finds_them_from_anywhere(tmp_path: Path) -> None:
    """Then the rest of the path: Python puts a script's own folder there."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    _experiment_in(project)
    (project / "sweep.py").write_text(SCRIPT, encoding="utf-8")
    elsewhere.mkdir()
    done = _run_script(project / "sweep.py", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["2 jobs planned", "2 42"]
