"""The `dbdict` command as a user runs it: examples, stop and resume, errors, help."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from dbdict_celery import Channel
from tests.conftest import dbdict, read_conf, start_dbdict, wait_until

REGEXP = ("examples.regexp.experiment", "regexp::re.compile", "regexp.pattern='a.*c'")
COUNT = "examples.count.experiment"


def test_the_regexp_builder_example_prints_as_documented(tmp_path: Path) -> None:
    done = dbdict("run", *REGEXP, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "hello blahblah there\n"


def test_cmdline_is_an_alias_of_run(tmp_path: Path) -> None:
    done = dbdict("cmdline", "--dry-run", *REGEXP, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "hello blahblah there\n")


def test_the_default_workdir_is_named_after_the_parameters(tmp_path: Path) -> None:
    done = dbdict("run", COUNT, "target=2", "interval=0", "name=first try", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (workdir,) = tmp_path.iterdir()
    assert workdir.name.startswith(f"{COUNT},interval=0,name=first_try,target=2-")
    assert read_conf(workdir / "current.conf")["count"] == 2


def test_filemerge_gives_the_same_state_as_the_equivalent_run(tmp_path: Path) -> None:
    (tmp_path / "blah1.txt").write_text(
        "# the model\ntext.first = 'hello'\ntext.second = 'world'\n\ntarget = 2\n"
    )
    (tmp_path / "blah2.txt").write_text("text.tagline = 'THE GREATEST LANGUAGE EVER'\n")
    merged = dbdict(
        "filemerge", "-w", "merged", COUNT, "blah1.txt", "blah2.txt", "interval=0", cwd=tmp_path
    )
    assert merged.returncode == 0, merged.stderr
    run = dbdict(
        "run", "-w", "run", COUNT,
        "text.first=hello", "text.second=world", "text.tagline='THE GREATEST LANGUAGE EVER'",
        "target=2", "interval=0",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    for conf in ("orig.conf", "current.conf"):
        assert read_conf(tmp_path / "merged" / conf) == read_conf(tmp_path / "run" / conf)
    assert read_conf(tmp_path / "run" / "current.conf")["text.tagline"] == (
        "THE GREATEST LANGUAGE EVER"
    )


def test_sigterm_saves_then_the_same_command_resumes_then_refuses(tmp_path: Path) -> None:
    command = ("run", "-w", "job", COUNT, "target=30", "interval=0.05")
    current = tmp_path / "job" / "current.conf"

    def saved_count() -> int:
        try:
            return int(read_conf(current).get("count", 0))
        except (FileNotFoundError, ValueError):
            return 0

    first = start_dbdict(*command, cwd=tmp_path)
    wait_until(lambda: saved_count() >= 3, "the first run to checkpoint 3 steps")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=30)
    assert first.returncode == 3, err  # INCOMPLETE: neither DONE (0) nor failed (1)
    stopped = read_conf(current)
    assert stopped["dbdict.status"] == Channel.START
    assert 3 <= stopped["count"] < 30
    assert "INCOMPLETE" in err

    second = dbdict(*command, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    first_step = second.stdout.splitlines()[0]
    assert first_step == f"step {stopped['count'] + 1}", "the second run resumes, not restarts"
    finished = read_conf(current)
    assert (finished["count"], finished["runs"]) == (30, 2)
    assert finished["dbdict.status"] == Channel.DONE

    third = dbdict(*command, cwd=tmp_path)
    assert third.returncode == 2, "refused: a usage mistake, nothing ran"
    assert third.stderr.strip() == "dbdict: this job is already DONE; use --force to run it anyway"
    assert read_conf(current) == finished

    forced = dbdict(*command[:1], "-f", *command[1:], cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    assert read_conf(current)["runs"] == 3


def test_parse_never_executes_code_given_on_the_command_line(tmp_path: Path) -> None:
    marker = tmp_path / "X"
    done = dbdict(
        "run", "-w", "job", COUNT, "target=0", f"a=__import__('os').system('touch {marker}')",
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert not marker.exists()
    assert read_conf(tmp_path / "job" / "current.conf")["a"].startswith("__import__(")


def test_an_experiment_exception_shows_its_traceback_and_saves_the_state(tmp_path: Path) -> None:
    done = dbdict("run", "-w", "job", "tests.experiments.fail", "a=1", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "ValueError: the experiment broke on purpose" in done.stderr
    saved = read_conf(tmp_path / "job" / "current.conf")
    assert saved["dbdict.status"] == Channel.FAILED
    assert saved["progress"] == 1
    assert "ValueError: the experiment broke on purpose" in saved["dbdict.error"]


def test_redirect_sends_output_to_the_workdir(tmp_path: Path) -> None:
    done = dbdict("run", "-r", "-w", "job", "tests.experiments.noisy", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert "to stderr" not in done.stderr
    assert (tmp_path / "job" / "stdout").read_text() == "to stdout\n"
    assert (tmp_path / "job" / "stderr").read_text() == "to stderr\n"


def test_redirected_failure_still_shows_the_traceback_on_the_terminal(tmp_path: Path) -> None:
    done = dbdict(
        "run", "--redirect-stdout", "-w", "job", "tests.experiments.noisy_fail", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "RuntimeError: after printing" in done.stderr
    assert (tmp_path / "job" / "stdout").read_text() == "before failing\n"


def test_dry_run_removes_its_temporary_workdir(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    for experiment in ("tests.experiments.noisy", "tests.experiments.fail"):
        dbdict("run", "-n", experiment, cwd=tmp_path, TMPDIR=str(scratch))
        assert list(scratch.iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]
    done = dbdict("run", "-n", "tests.experiments.noisy", cwd=tmp_path, TMPDIR=str(scratch))
    assert done.returncode == 0
    assert done.stderr.strip().endswith("dbdict: DONE (dry run: nothing was kept)"), (
        "no path that is gone already"
    )
    assert str(scratch) not in done.stderr


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["frobnicate"], 2, "No such command 'frobnicate'"),
        (["run"], 2, "Missing argument 'EXPERIMENT'"),
        (["run", "examples.nope.experiment"], 2, "module 'examples' has no attribute 'nope'"),
        (
            ["run", "examples.count.nothing"],
            2,
            "module 'examples.count' has no attribute 'nothing'",
        ),
        (["run", "nosuchpackage.experiment"], 2, "no module named 'nosuchpackage'"),
        (["run", COUNT, "foo"], 2, "malformed parameter 'foo'"),
        (["run", COUNT, "a=1", "a.b=2"], 2, "conflicts"),
        (["run", "-n", "-w", "x", COUNT], 2, "use only one of --workdir and --dry-run"),
        (["run", "--bogus", COUNT], 2, "--bogus"),
        (["filemerge", COUNT, "missing.conf"], 2, "parameter file 'missing.conf' does not exist"),
        (["filemerge", COUNT], 2, "at least one parameter file"),
        (["help", "nothing"], 2, "no help topic or command named 'nothing'"),
        (["schedule", COUNT, "n=range(1.5)"], 2, "takes 1 to 3 whole numbers"),
        (["schedule", "--samples", "2", COUNT, "n=1"], 2, "--samples needs a value drawn"),
        (["schedule", "--dry-run", COUNT, "n=uniform(0, 1)"], 2, "give --samples N"),
        (["cancel"], 2, "give job IDs, or --where"),
        (["cancel", "x"], 2, "'x' is not a valid integer"),
        (["requeue", "--status", "running", "1"], 2, "'running' is not one of"),
        (["worker", "--grace", "-1"], 2, "-1.0 is not in the range"),
        (["worker", "--db", "mysql://u:hunter2@h/db"], 2, "malformed table path 'mysql://u:***@h"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, args: list[str], code: int, message: str
) -> None:
    done = dbdict(*args, cwd=tmp_path)
    assert done.returncode == code
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing is created by a refused command"


@pytest.mark.parametrize(
    ("topic", "expected"),
    [
        ("experiment", "channel.save_and_switch() saves the state, then calls switch()"),
        ("parameters", "regexp.pattern='a.*c'"),
        ("example", "dbdict run my_experiments.experiment"),
        ("run", "--redirect-stdout"),
        ("cmdline", "--dry-run"),
        ("filemerge", "THE GREATEST LANGUAGE EVER"),
    ],
)
def test_help_topics_and_commands(tmp_path: Path, topic: str, expected: str) -> None:
    done = dbdict("help", topic, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout


def test_help_lists_topics_and_commands(tmp_path: Path) -> None:
    done = dbdict("help", cwd=tmp_path)
    assert done.returncode == 0
    for word in ("example", "experiment", "parameters", "run", "filemerge", "help"):
        assert f"  {word} " in done.stdout
    for args in (["--help"], ["run", "--help"], ["filemerge", "-h"]):
        shown = dbdict(*args, cwd=tmp_path)
        assert shown.returncode == 0
        assert shown.stdout.startswith("Usage: dbdict")


def test_the_readme_demo_runs_end_to_end_and_leaves_where_it_ran_as_it_was(
    tmp_path: Path,
) -> None:
    """`make demo` runs it from the repository's root: nothing of it may land there."""
    from tests.conftest import REPO

    readme = (REPO / "README.md").read_text()
    assert "make demo" in readme
    assert "make test" in readme
    bin_dir = Path(__import__("sys").executable).parent
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "demo.sh"), str(bin_dir)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.iterdir()) == [], "the demo writes only in its scratch directory"
    assert "hello blahblah there" in done.stdout
    assert "scheduled 9 jobs" in done.stdout
    assert "job 1 is already in" in done.stdout
    results = done.stdout.split("-- the results table:")[1].split("-- job 9's files")[0]
    rows = [line.split("│")[1:-1] for line in results.splitlines() if line.startswith("│")]
    cells = [[cell.strip() for cell in row] for row in rows]
    assert sorted((int(t), int(s), int(r)) for _, status, t, s, r in cells if status == "DONE") == [
        (target, scale, target * scale) for target in (3, 4, 5) for scale in (1, 10, 100)
    ]
    assert [int(r) for *_, r in cells] == sorted((int(r) for *_, r in cells), reverse=True)
    assert "dbdict.status = 0" in done.stdout, "the checkpoint after SIGTERM is START"
    assert done.stdout.rstrip().endswith("target = 40")
    assert "dbdict.status = 2" in done.stdout.split("final state:")[1]


@pytest.mark.parametrize(
    ("kind", "at", "named"),
    [
        ("array", "save", "a numpy.ndarray"),
        ("set", "end", "a set"),
        ("int_keys", "save", "the key 1"),
    ],
)
def test_a_state_that_cannot_be_saved_fails_in_one_line_and_may_run_again(
    tmp_path: Path, kind: str, at: str, named: str
) -> None:
    args = ["run", "-w", "work", "tests.experiments.unstorable", f"kind={kind}", f"at={at}"]
    done = dbdict(*args, cwd=tmp_path)
    assert done.returncode == 1
    assert "cannot store 'value'" in done.stderr
    assert named in done.stderr
    assert "Traceback" not in done.stderr
    saved = read_conf(tmp_path / "work" / "current.conf")
    assert saved["dbdict.status"] == Channel.FAILED
    assert saved["step"] == 1, "the last state that could be written"
    assert "cannot store 'value'" in saved["dbdict.error"]
    again = dbdict(*args, cwd=tmp_path)
    assert "already" not in again.stderr, "a FAILED run may run again"
    assert "cannot store 'value'" in again.stderr


def test_two_experiments_with_the_same_parameters_never_share_a_workdir(tmp_path: Path) -> None:
    first = dbdict("run", COUNT, "target=2", "interval=0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    other = dbdict("run", "tests.experiments.record", "target=2", "interval=0", "value=1",
                   cwd=tmp_path)  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert "already" not in other.stderr
    assert len(list(tmp_path.iterdir())) == 2


def test_parameters_that_contradict_the_saved_job_are_refused_unless_restarted(
    tmp_path: Path,
) -> None:
    first = dbdict("run", "-w", "work", COUNT, "target=2", "interval=0", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    for args in (["-f", COUNT, "target=5", "interval=0"],
                 ["-f", "tests.experiments.record", "target=2", "interval=0"]):  # fmt: skip
        refused = dbdict("run", "-w", "work", *args, cwd=tmp_path)
        assert refused.returncode == 2
        assert "--restart" in refused.stderr
        assert read_conf(tmp_path / "work" / "current.conf")["target"] == 2, "nothing changed"
    again = dbdict("run", "-w", "work", "--restart", COUNT, "target=5", "interval=0", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    saved = read_conf(tmp_path / "work" / "current.conf")
    assert (saved["target"], saved["count"]) == (5, 5)


def test_a_run_begun_under_the_earlier_workdir_name_resumes_there(tmp_path: Path) -> None:
    earlier = tmp_path / "interval=0,target=5"  # parameters only, as workdirs were named
    earlier.mkdir()
    (earlier / "orig.conf").write_text(
        f"dbdict.experiment = {COUNT!r}\ninterval = 0\ntarget = 5\n", encoding="utf-8"
    )
    (earlier / "current.conf").write_text(
        f"count = 3\ndbdict.experiment = {COUNT!r}\ndbdict.status = 0\ninterval = 0\ntarget = 5\n",
        encoding="utf-8",
    )
    done = dbdict("run", COUNT, "target=5", "interval=0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert [path.name for path in tmp_path.iterdir()] == [earlier.name]
    assert "step 4" in done.stdout
    assert "step 1" not in done.stdout, "resumed from the saved count 3"


def test_a_job_with_a_nan_parameter_is_the_same_job_when_run_again(tmp_path: Path) -> None:
    args = ["run", "-w", "work", COUNT, "target=2", "interval=0", "x=nan"]
    assert dbdict(*args, cwd=tmp_path).returncode == 0
    again = dbdict(*args, cwd=tmp_path)
    assert "already DONE" in again.stderr
