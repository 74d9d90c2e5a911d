"""`dbdict run` exits with the code of what it recorded, and the exit codes are one table:
the README's, `dbdict help exit-codes` and the runners' --help say the same."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dbdict_celery import Channel
from tests.conftest import REPO, dbdict, read_conf

COUNT = "examples.count.experiment"

QUITS = """\
import sys


def experiment(state, channel):
    state.progress = 1
    channel.save()
    sys.exit(state.code)
"""


@pytest.mark.parametrize("code", ["0", "3", "'giving up'"])
def test_an_experiment_calling_sys_exit_is_recorded_failed_and_exits_1(
    tmp_path: Path, code: str
) -> None:
    (tmp_path / "quits.py").write_text(QUITS, encoding="utf-8")
    done = dbdict("run", "-w", "work", "quits.experiment", f"code={code}", cwd=tmp_path)
    assert done.returncode == 1, "FAILED is recorded: neither DONE (0) nor INCOMPLETE (3)"
    assert done.stderr.strip() == (
        f"dbdict: the experiment called sys.exit({code}): the run is recorded FAILED"
    )
    saved = read_conf(tmp_path / "work" / "current.conf")
    assert saved["dbdict.status"] == Channel.FAILED
    assert saved["progress"] == 1


@pytest.mark.parametrize(("status", "word"), [(Channel.DONE, "DONE"), (Channel.RUNNING, "RUNNING")])
def test_a_job_already_done_or_running_is_refused_as_a_usage_mistake(
    tmp_path: Path, status: int, word: str
) -> None:
    args = ["-w", "work", COUNT, "target=2", "interval=0"]
    first = dbdict("run", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    conf = tmp_path / "work" / "current.conf"
    conf.write_text(
        re.sub(r"^dbdict\.status = \d+$", f"dbdict.status = {status}", conf.read_text(), flags=re.M)
    )
    kept = conf.read_text()
    refused = dbdict("run", *args, cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip() == (
        f"dbdict: this job is already {word}; use --force to run it anyway"
    )
    assert conf.read_text() == kept, "nothing ran"
    forced = dbdict("run", "--force", *args, cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr


@pytest.mark.parametrize("workdir", ["a_file", "a_file/below"])
def test_a_workdir_that_cannot_be_made_is_one_line_and_exit_2(tmp_path: Path, workdir: str) -> None:
    (tmp_path / "a_file").write_text("not a directory\n")
    done = dbdict("run", "-w", workdir, COUNT, "target=2", "interval=0", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"dbdict: cannot make the working directory '{workdir}': ")
    assert "--workdir" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr


def _codes(text: str) -> dict[int, str]:
    """Each exit code of a table (README rows `| 0 | ... |`, or the help's `  0  ...` lines
    and their continuations) and its meaning, in plain words."""
    codes: dict[int, str] = {}
    code = None
    for line in text.splitlines():
        entry = re.fullmatch(r"\| (\d) \| (.*) \||(\d)  (.*)", line.strip())
        if entry:
            code = int(entry.group(1) or entry.group(3))
            codes[code] = entry.group(2) or entry.group(4)
        elif code is not None and line.startswith("     ") and line.strip():
            codes[code] += " " + line.strip()
        else:
            code = None
    return {code: " ".join(meaning.replace("`", "").split()) for code, meaning in codes.items()}


def test_the_readme_and_the_help_give_the_same_table_of_exit_codes(tmp_path: Path) -> None:
    shown = dbdict("help", "exit-codes", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    table = _codes(shown.stdout)
    assert sorted(table) == [0, 1, 2, 3]
    assert _codes((REPO / "README.md").read_text(encoding="utf-8")) == table
    for runner in ("run", "filemerge"):
        helped = dbdict(runner, "--help", cwd=tmp_path)
        assert _codes(helped.stdout) == table, f"dbdict {runner} --help"
