"""The in-process mirror of a local exproot: only what changed, atomically, nothing lost."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from dbdict_celery.experiment.mirror import PARTIAL, mirror


def _tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def test_a_tree_is_copied_with_its_times_then_only_what_changed(tmp_path: Path) -> None:
    source, target = tmp_path / "work", tmp_path / "exproot" / "job"
    (source / "checkpoints").mkdir(parents=True)
    (source / "current.conf").write_text("step = 1\n")
    (source / "checkpoints" / "model.bin").write_text("weights" * 1000)
    assert mirror(str(source), str(target)) == 2
    assert _tree(target) == _tree(source)
    model = target / "checkpoints" / "model.bin"
    assert model.stat().st_mtime_ns == (source / "checkpoints" / "model.bin").stat().st_mtime_ns
    inode = model.stat().st_ino
    (source / "current.conf").write_text("step = 2\n")
    assert mirror(str(source), str(target)) == 1, "the unchanged checkpoint is not copied again"
    assert (target / "current.conf").read_text() == "step = 2\n"
    assert model.stat().st_ino == inode
    assert not list(target.rglob(f"*{PARTIAL}")), "no partial file is left behind"


def test_a_file_changed_within_the_same_second_with_the_same_size_is_copied(
    tmp_path: Path,
) -> None:
    source, target = tmp_path / "work", tmp_path / "copy"
    source.mkdir()
    conf = source / "current.conf"
    conf.write_text("step = 1\n")
    second = 1_700_000_000 * 10**9
    os.utime(conf, ns=(second + 100, second + 100))
    mirror(str(source), str(target))
    conf.write_text("step = 2\n")  # the same size
    os.utime(conf, ns=(second + 200, second + 200))  # the same second
    assert mirror(str(source), str(target)) == 1
    assert (target / "current.conf").read_text() == "step = 2\n"


def test_links_are_kept_as_links_and_nothing_is_removed(tmp_path: Path) -> None:
    source, target = tmp_path / "work", tmp_path / "copy"
    source.mkdir()
    (source / "data.txt").write_text("data")
    (source / "latest").symlink_to("data.txt")
    target.mkdir()
    (target / "older.txt").write_text("kept")
    mirror(str(source), str(target))
    assert os.readlink(target / "latest") == "data.txt"
    assert (target / "older.txt").read_text() == "kept", "like rsync -a: no deletion"
    assert mirror(str(source), str(target)) == 0


def test_a_copy_that_fails_part_way_changes_no_file(tmp_path: Path) -> None:
    """The files of one save land together: a copy stopped part way leaves the last one."""
    source, target = tmp_path / "work", tmp_path / "copy"
    source.mkdir()
    (source / "current.conf").write_text("step = 1\n")
    (source / "stdout").write_text("step 1\n")
    mirror(str(source), str(target))
    (source / "current.conf").write_text("step = 22\n")
    (source / "stdout").write_text("step 1\nstep 2\n")
    (source / ("n" * 250)).write_text("its copy's name is too long to be written")
    with pytest.raises(OSError, match="too long"):
        mirror(str(source), str(target))
    assert _tree(target) == {"current.conf": "step = 1\n", "stdout": "step 1\n"}
