"""What a run ran: the git state of its experiment's code, its process's environment, and no
secret in either. Real git, real repositories in temporary folders."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from dbdict_celery.experiment import provenance
from dbdict_celery.experiment.provenance import UNKNOWN, Code, code_of, environment, scrub
from tests.conftest import git


@pytest.fixture
def module_in(tmp_path: Path) -> Iterator[Path]:
    """A folder on sys.path holding `lab_exp.py`; the module forgotten afterwards."""
    (tmp_path / "lab_exp.py").write_text("def experiment(state, channel):\n    pass\n")
    sys.path.insert(0, str(tmp_path))
    provenance._code_at.cache_clear()
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("lab_exp", None)
        provenance._code_at.cache_clear()


def test_a_clean_checkout_gives_its_commit_and_branch(module_in: Path) -> None:
    git(module_in, "init", "-q", "-b", "trunk")
    git(module_in, "add", "lab_exp.py")
    git(module_in, "commit", "-q", "-m", "one")
    importlib.import_module("lab_exp")
    code = code_of("lab_exp.experiment")
    assert code == Code(
        commit=git(module_in, "rev-parse", "HEAD"), branch="trunk", dirty=False,
        repository=str(module_in.resolve()), remote=None, diff="",
    )  # fmt: skip


def test_uncommitted_changes_give_dirty_and_the_diff(module_in: Path) -> None:
    git(module_in, "init", "-q", "-b", "main")
    git(module_in, "add", "lab_exp.py")
    git(module_in, "commit", "-q", "-m", "one")
    (module_in / "lab_exp.py").write_text("def experiment(state, channel):\n    return 1\n")
    (module_in / "notes.txt").write_text("untracked files do not make a checkout dirty\n")
    importlib.import_module("lab_exp")
    code = code_of("lab_exp.experiment")
    assert code.dirty is True
    assert "+    return 1" in code.diff
    assert "notes.txt" not in code.diff


@pytest.mark.parametrize("case", ["no repository", "no commit yet", "no git"])
def test_what_cannot_be_told_is_unknown_and_never_an_error(
    module_in: Path, case: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if case == "no commit yet":
        git(module_in, "init", "-q", "-b", "main")
    if case == "no git":
        git(module_in, "init", "-q", "-b", "main")
        monkeypatch.setenv("PATH", str(module_in / "empty-bin"))  # git is nowhere on it
    importlib.import_module("lab_exp")
    code = code_of("lab_exp.experiment")
    assert code.commit == UNKNOWN
    assert code.dirty is not True
    assert code_of("not_imported.anywhere").commit == UNKNOWN


def test_the_environment_lists_packages_and_hashes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    here = environment()
    assert any(line.lower().startswith("sqlalchemy==") for line in here.packages)
    assert list(here.packages) == sorted(here.packages, key=str.lower)
    assert len(here.hash) == 64
    assert here.python.startswith(f"{sys.version_info.major}.{sys.version_info.minor}.")
    assert here.hardware["cpus"] >= 1


def test_only_allow_listed_variables_without_secret_names_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    monkeypatch.setenv("MY_SETTING", "kept")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_0123456789abcdef")
    monkeypatch.setenv("HOME_DIR_UNLISTED", "/home/x")
    monkeypatch.setenv("DBDICT_CAPTURE_ENV", "MY_SETTING, GITHUB_TOKEN")
    assert provenance._variables() == {"OMP_NUM_THREADS": "4", "MY_SETTING": "kept"}


def test_scrub_masks_url_passwords_and_secret_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "k3y-0123456789")
    monkeypatch.setenv("SOME_FLAG_TOKEN", "1")  # too short to be a secret worth masking
    text = (
        "postgresql://me:p@ss/w0rd@db/exps redis://:hunter22@cache:6379/0 "
        "ssh://store:/data https://x:tok@github.com/a key = 'k3y-0123456789' 1 "
        "https://ghp_0123456789@github.com/o/r.git ssh://git@github.com/o/r.git"
    )
    assert scrub(text) == (
        "postgresql://me:***@db/exps redis://:***@cache:6379/0 "
        "ssh://store:/data https://x:***@github.com/a key = '***' 1 "
        "https://***@github.com/o/r.git ssh://git@github.com/o/r.git"
    )


def test_a_value_that_is_not_utf8_is_kept_readable(monkeypatch: pytest.MonkeyPatch) -> None:
    """A path of bytes from another locale: the database takes only UTF-8."""
    monkeypatch.setenv("VIRTUAL_ENV", b"/home/j\xe9r\xf4me/venv".decode("utf-8", "surrogateescape"))
    kept = provenance._variables()["VIRTUAL_ENV"]
    kept.encode("utf-8")  # would raise on a lone surrogate
    assert kept == "/home/j\ufffdr\ufffdme/venv"
