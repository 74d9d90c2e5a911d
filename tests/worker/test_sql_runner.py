"""`dbdict schedule` and `dbdict sql`: the broker-less runner, on Postgres and SQLite."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import AttemptOutcome
from dbdict_celery.store.job import RESTART_PRIORITY, Job, NewJob
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker import dbrunner
from dbdict_celery.worker.dbrunner import book, run_booked, run_sql
from tests.conftest import dbdict, read_conf, start_dbdict

pytestmark = pytest.mark.integration


def test_schedule_validates_inserts_once_and_keeps_the_exproot(
    location: str, tmp_path: Path
) -> None:
    first = dbdict("schedule", "--no-enqueue", "--db", location, "--priority", "3",
                   "--exproot", "roots", "examples.count.experiment", "target=2", "lr = 0.1",
                   cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("scheduled job ")
    again = dbdict("sqlschedule", "--db", location, "examples.count.experiment", "lr=0.1",
                   "target=2", cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "already in" in again.stdout
    (job,) = JobStore.open(location).jobs()
    assert (job.status, job.priority, job.exproot) == (Status.START, 3.0, str(tmp_path / "roots"))
    assert job.params == job.state == {"lr": 0.1, "target": 2}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["examples.nope.experiment", "a=1"], "module 'examples' has no attribute 'nope'"),
        (["examples.count.experiment", "a"], "malformed parameter 'a'"),
        (["examples.count.experiment", "a=1", "a.b=2"], "conflicts"),
    ],
)
def test_schedule_inserts_nothing_for_bad_input(
    location: str, tmp_path: Path, args: list[str], message: str
) -> None:
    done = dbdict("schedule", "--no-enqueue", "--db", location, *args, cwd=tmp_path)
    assert done.returncode == 2
    assert message in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert JobStore.open(location).jobs() == []


def test_three_parallel_sql_runners_drain_a_mixed_table(location: str, tmp_path: Path) -> None:
    store = JobStore.open(location)
    kinds = {
        "tests.experiments.write_files": Status.DONE,
        "tests.experiments.always_incomplete": Status.START,
        "tests.experiments.fail": Status.FAILED,
    }
    for i in range(8):
        for experiment in kinds:
            done = dbdict(
                "schedule", "--no-enqueue", "--db", location, experiment, f"i={i}", cwd=tmp_path
            )
            assert done.returncode == 0, done.stderr
    exproot = tmp_path / "exproot"
    runners = [
        start_dbdict("sql", "--db", location, "-n", "0", str(exproot), cwd=tmp_path)
        for _ in range(3)
    ]
    outputs = [runner.communicate(timeout=240) for runner in runners]
    for runner, (out, err) in zip(runners, outputs, strict=True):
        assert runner.returncode == (1 if "FAILED" in err else 0), err
        assert out.startswith("No more jobs to run (ran ")
    failures = [int(err.split(" of the jobs run here FAILED")[0].split()[-1])
                for _, err in outputs if "FAILED" in err]  # fmt: skip
    assert sum(failures) == 8, "each runner reports, in its exit code, the jobs that failed"
    ran = sum(int(out.split("(ran ")[1].split()[0]) for out, _ in outputs)

    jobs = store.jobs()
    assert len(jobs) == 24
    assert ran == sum(job.attempts for job in jobs)
    for job in jobs:
        assert job.status == kinds[job.experiment], job
        files = exproot / store.path.dbname / store.path.table / str(job.id)
        assert (files / "orig.conf").is_file()
        current = read_conf(files / "current.conf")
        assert current["i"] == job.state["i"]
        if job.status == Status.DONE:
            assert job.attempts == 1
            assert (files / "artifact.txt").read_text() == "run 1\n", "ran exactly once"
            assert job.finished_at is not None
            assert job.state["runs"] == 1
        elif job.status == Status.START:
            assert job.priority == RESTART_PRIORITY
            assert 1 <= job.attempts <= 3, "each loop runs a job at most once"
            assert job.state["count"] == current["count"] == job.attempts, "each run resumed"
        else:
            assert "ValueError: the experiment broke on purpose" in (job.error or "")
            assert job.state["progress"] == 1
            assert current["dbdict.status"] == Status.FAILED
        assert job.host
        assert job.workdir


def test_sql_runs_n_jobs_then_stops(location: str, tmp_path: Path) -> None:
    for i in range(3):
        dbdict(
            "schedule",
            "--no-enqueue",
            "--db",
            location,
            "tests.experiments.write_files",
            f"i={i}",
            cwd=tmp_path,
        )
    done = dbdict("sql", "--db", location, "-n", "2", "root", cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "Ran 2 jobs")
    store = JobStore.open(location)
    assert store.counts()[Status.DONE] == 2
    ran = store.jobs(status=Status.DONE)
    assert {job.exproot for job in ran} == {str(tmp_path / "root")}, "recorded absolute"


def test_sigterm_to_a_sql_runner_saves_the_job_for_later(location: str, tmp_path: Path) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "examples.count.experiment", "target=400",
           "interval=0.05", cwd=tmp_path)  # fmt: skip
    store = JobStore.open(location)
    runner = start_dbdict("sql", "--db", location, "-n", "0", str(tmp_path / "root"), cwd=tmp_path)
    deadline = time.monotonic() + 60
    while store.jobs()[0].state.get("count", 0) < 3:
        assert time.monotonic() < deadline, "the job never saved 3 steps"
        time.sleep(0.1)
    runner.terminate()
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert out.startswith("Stopped on request (ran 1 jobs)")
    (job,) = store.jobs()
    assert (job.status, job.priority) == (Status.START, RESTART_PRIORITY)
    assert 3 <= job.state["count"] < 400


@pytest.mark.parametrize("command", ["schedule", "sql"])
def test_an_unreachable_database_is_one_line_quickly_with_the_password_masked(
    tmp_path: Path, command: str
) -> None:
    location = "postgresql://root:s3cret-pw@127.0.0.1:1/test/jobs"
    args = ["examples.count.experiment"] if command == "schedule" else [str(tmp_path)]
    started = time.monotonic()
    done = dbdict(command, "--db", location, *args, cwd=tmp_path)
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert "s3cret-pw" not in done.stdout + done.stderr
    assert "postgresql://root:***@127.0.0.1:1/test/jobs" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("postgresql://root@127.0.0.1/test/jobs;DROP TABLE x", "invalid table name"),
        ("ftp://host/db/t", "malformed table path"),
    ],
)
def test_bad_table_paths_on_the_command_line(tmp_path: Path, location: str, message: str) -> None:
    for args in (["schedule", "--no-enqueue", "--db", location, "examples.count.experiment"],
                 ["sql", "--db", location, str(tmp_path)]):  # fmt: skip
        done = dbdict(*args, cwd=tmp_path)
        assert done.returncode == 2
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def wait_for_row(
    store: JobStore, condition: Callable[[Job], bool], what: str, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not condition(store.jobs()[0]):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_the_heartbeat_advances_while_the_experiment_never_saves(
    location: str, tmp_path: Path
) -> None:
    dbdict(
        "schedule",
        "--no-enqueue",
        "--db",
        location,
        "tests.experiments.quiet",
        "seconds=3",
        cwd=tmp_path,
    )
    store = JobStore.open(location)
    runner = start_dbdict(
        "sql", "--db", location, str(tmp_path / "root"), cwd=tmp_path, DBDICT_HEARTBEAT="0.2"
    )
    wait_for_row(store, lambda job: job.status == Status.RUNNING, "the job to start")
    first = store.jobs()[0].heartbeat_at
    wait_for_row(
        store,
        lambda job: first is not None and job.heartbeat_at is not None and job.heartbeat_at > first,
        "a heartbeat",
        timeout=10,
    )
    _, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert store.jobs()[0].status == Status.DONE


def test_cancelling_a_running_job_stops_it_with_its_state_saved(
    location: str, tmp_path: Path
) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "examples.count.experiment", "target=1000",
           "interval=0.05", cwd=tmp_path)  # fmt: skip
    store = JobStore.open(location)
    runner = start_dbdict("sql", "--db", location, "-n", "0", str(tmp_path / "root"), cwd=tmp_path)
    wait_for_row(store, lambda job: job.state.get("count", 0) >= 3, "3 saved steps")
    (stopping,) = store.cancel([store.jobs()[0].id]).stopping
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert out.startswith("No more jobs to run (ran 1 jobs)"), "a cancel stops its job only"
    job = store.get(stopping.id)
    assert job.status == Status.CANCELLED
    assert 3 <= job.state["count"] < 1000
    saved = read_conf(tmp_path / "root" / store.path.dbname / store.path.table / str(job.id)
                      / "current.conf")  # fmt: skip
    assert saved["count"] == job.state["count"], "the exproot holds the same checkpoint"


def test_an_experiment_calling_sys_exit_is_recorded_failed_and_the_runner_exits(
    location: str, tmp_path: Path
) -> None:
    dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.exits", cwd=tmp_path)
    done = dbdict("sql", "--db", location, "-n", "0", str(tmp_path / "root"), cwd=tmp_path)
    assert done.returncode == 1, "the job failed; the runner itself goes on to its end"
    assert "1 of the jobs run here FAILED" in done.stderr
    (job,) = JobStore.open(location).jobs()
    assert job.status == Status.FAILED
    assert "SystemExit: 3" in (job.error or "")
    assert job.state["progress"] == 1


def test_a_runner_without_an_exproot_leaves_the_job_to_start(location: str, tmp_path: Path) -> None:
    from dbdict_celery.errors import UsageError

    dbdict(
        "schedule", "--no-enqueue", "--db", location, "tests.experiments.write_files", cwd=tmp_path
    )
    store = JobStore.open(location)
    booking = book(store)
    assert booking is not None
    with pytest.raises(UsageError, match="has no exproot"):
        run_booked(store, booking)
    assert store.get(booking.job.id).status == Status.START


def test_the_end_of_a_run_writes_the_row_once(location: str, tmp_path: Path) -> None:
    """The booking records where the files are, so setting up writes nothing; the experiment's
    save is one UPDATE; the outcome and the last state land in one more. On Postgres the run's
    attempt rides in the same statements: history costs no round trip."""
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.write_files", {"runs": 0})]))
    updates: list[str] = []
    writes: list[str] = []
    of_the_job_table = re.compile(rf'\bUPDATE "?{store.path.table}"? SET', re.IGNORECASE)

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if of_the_job_table.search(statement):
            updates.append(statement)
        if statement.lstrip().split()[0].upper() in ("UPDATE", "INSERT", "WITH"):
            writes.append(statement)

    booking = book(store, exproot=str(tmp_path / "exproot"))
    assert booking is not None
    event.listen(store.engine, "before_cursor_execute", count)
    try:
        outcome = run_booked(store, booking)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert outcome.status is Status.DONE
    row = store.get(booking.job.id)
    assert row.state["runs"] == 1
    assert row.exproot == str(tmp_path / "exproot"), "the booking recorded where the files are"
    assert (tmp_path / "exproot").is_dir()
    assert len(updates) == 2, updates  # the experiment's one save(), and the end
    if store.dialect == "postgresql":
        assert len(writes) == 2, writes
    (attempt,) = store.attempts(booking.job.id)
    assert attempt.outcome is AttemptOutcome.DONE


@pytest.mark.ssh
def test_a_stop_while_the_files_are_fetched_is_a_stop_not_a_failure(
    location: str, tmp_path: Path, ssh_command: str
) -> None:
    """Over a slow link the pull takes a while: a SIGTERM then puts the job back to START."""
    slow_ssh = tmp_path / "slow-ssh"
    slow_ssh.write_text('#!/bin/sh\nsleep 1\nexec ssh "$@"\n', encoding="utf-8")
    slow_ssh.chmod(0o755)
    slow = ssh_command.replace("ssh", str(slow_ssh), 1)
    exproot = f"ssh://127.0.0.1:{tmp_path / 'root'}"
    dbdict("schedule", "--no-enqueue", "--db", location, "examples.count.experiment", "target=5",
           "interval=0", cwd=tmp_path)  # fmt: skip
    store = JobStore.open(location)
    runner = start_dbdict("sql", "--db", location, "-n", "1", exproot, cwd=tmp_path,
                          DBDICT_SSH_COMMAND=slow)  # fmt: skip
    deadline = time.monotonic() + 60
    while store.jobs()[0].status != Status.RUNNING:
        assert time.monotonic() < deadline, "the job was never booked"
        time.sleep(0.02)
    runner.terminate()  # booked, its files still being fetched (each ssh waits 1 s first)
    out, err = runner.communicate(timeout=60)
    assert runner.returncode == 0, err
    assert out.startswith("Stopped on request (ran 1 jobs)")
    (job,) = store.jobs()
    assert (job.status, job.priority) == (Status.START, RESTART_PRIORITY)
    assert job.error is None
    assert "count" not in job.state, "the experiment never started"


def test_a_sql_loop_books_past_only_the_jobs_it_left_waiting(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`dbdict sql -n 0` excludes from its bookings only the jobs it ran that went back to
    START (every job it ran made the statement grow without bound), and ends once
    MAX_LEFT_WAITING of them wait."""
    store = JobStore.open(location)
    done = [NewJob("tests.experiments.write_files", {"i": i}) for i in range(6)]
    waiting = [NewJob("tests.experiments.always_incomplete", {"i": i}) for i in range(3)]
    list(store.insert(done + waiting))
    excluded: list[int] = []
    not_in = re.compile(r"NOT IN \(([^)]*)\)", re.IGNORECASE)

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        for found in not_in.findall(statement):
            excluded.append(found.count("?") + found.count("%("))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        report = run_sql(store, str(tmp_path / "exproot"), n=0)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)
    assert (report.ran, report.drained) == (9, True)
    assert excluded, "the bookings were seen"
    assert max(excluded) <= len(waiting), excluded
    monkeypatch.setattr(dbrunner, "MAX_LEFT_WAITING", 2)
    again = run_sql(store, str(tmp_path / "exproot"), n=0)
    assert (again.ran, again.drained, again.stopped) == (2, False, False)


def test_dbdict_sql_keeps_each_reported_point_in_the_table_and_among_the_files(
    location: str, tmp_path: Path
) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    scheduled = dbdict("schedule", "--no-enqueue", "--db", location, "tests.experiments.curve",
                       "steps=25", f"marks='{marks}'", "pauses=-1", cwd=tmp_path)  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    ran = dbdict("sql", "--db", location, "-n", "1", "roots", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    store = JobStore.open(location)
    (job,) = store.jobs()
    assert job.status is Status.DONE
    points = store.metrics(job.id, keys=["loss"])
    assert [(p.step, p.value, p.run) for p in points] == [(s, 1000.0 + s, 1) for s in range(25)]
    files = tmp_path / "roots" / store.path.dbname / store.path.table / str(job.id)
    lines = (files / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 25, "the points are among the job's files too, once each"
