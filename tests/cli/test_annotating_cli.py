"""`dbdict tag`, `dbdict note` and `dbdict list --group-by` as users type them."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import dbdict


def run(tmp_path: Path, *args: str, code: int = 0) -> str:
    done = dbdict(*args, cwd=tmp_path, DBDICT_HOME=str(tmp_path / "home"))
    assert done.returncode == code, done.stderr
    if code:
        assert done.stderr.count("\n") == 1, f"one line: {done.stderr}"
        return done.stderr
    return done.stdout


def test_tag_note_and_find_them(tmp_path: Path) -> None:
    run(tmp_path, "schedule", "--no-enqueue", "tests.experiments.mark", "n=range(4)")
    assert (
        run(tmp_path, "tag", "1", "2", "+baseline", "+lr_0.1").strip()
        == "+baseline +lr_0.1 on 2 jobs"
    )
    run(tmp_path, "tag", "2", "-baseline", "-hyper", "+old")  # -h... is a tag, not --help
    run(tmp_path, "tag", "--where", "n>=2", "+big")
    run(tmp_path, "note", "3", "lr too high")
    listed = json.loads(run(tmp_path, "list", "--json", "--where", "tag=lr_0.1"))
    assert [(job["id"], job["tags"]) for job in listed] == [
        (1, "baseline lr_0.1"),
        (2, "lr_0.1 old"),
    ]
    table = run(tmp_path, "list")
    assert all(word in table for word in ("tags", "note", "lr too high"))
    assert "lr too high" in run(tmp_path, "show", "3")
    run(tmp_path, "note", "3", "")
    assert json.loads(run(tmp_path, "show", "3", "--json"))["note"] is None


def test_bad_tags_are_one_line_and_change_nothing(tmp_path: Path) -> None:
    run(tmp_path, "schedule", "--no-enqueue", "tests.experiments.mark", "n=range(2)")
    assert "no job 9" in run(tmp_path, "tag", "1", "9", "+x", code=2)
    assert "tag 'a b'" in run(tmp_path, "tag", "1", "+a b", code=2)
    assert "+TAG" in run(tmp_path, "tag", "1", "x", code=2)
    assert "IDs or --where" in run(tmp_path, "tag", "+x", code=2)
    assert json.loads(run(tmp_path, "list", "--json", "--where", "tag=x")) == []


def test_list_groups(tmp_path: Path) -> None:
    run(tmp_path, "schedule", "--no-enqueue", "tests.experiments.mark", "n=range(4)",
        "layers=choice(1,2)")  # fmt: skip
    groups = json.loads(run(tmp_path, "list", "--group-by", "layers", "--agg", "mean,count:n",
                            "--agg", "max:n", "--json"))  # fmt: skip
    assert groups == [
        {"layers": 1, "jobs": 4, "mean:n": 1.5, "count:n": 4, "max:n": 3.0},
        {"layers": 2, "jobs": 4, "mean:n": 1.5, "count:n": 4, "max:n": 3.0},
    ]
    assert "median" in run(tmp_path, "list", "--group-by", "n", "--agg", "median:n", code=2)
    assert "--group-by" in run(tmp_path, "list", "--agg", "mean:n", code=2)
