"""Limits as users write them: durations, sizes and exception names, read and checked before
anything is stored; and as the row keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.limits import (
    Limits,
    duration,
    format_duration,
    format_size,
    gpus_needed,
    size,
)
from dbdict_celery.store.store import JobStore
from tests.conftest import dbdict


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90", 90),
        ("90s", 90),
        ("15m", 900),
        ("2h", 7200),
        ("1.5d", 129600),
        (".5s", 0.5),
        ("2H", 7200),
        (" 3 m ", 180),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("300M", 300 * 2**20),
        ("8G", 8 * 2**30),
        ("512k", 512 * 2**10),
        ("1.5G", 3 * 2**29),
        ("300MB", 300 * 2**20),
        ("300MiB", 300 * 2**20),
        ("4096", 4096),
        ("1T", 2**40),
    ],
)
def test_sizes(text: str, count: int) -> None:
    assert size(text) == count


@pytest.mark.parametrize("text", ["", "2x", "h", "-5s", "0", "0s", "1e3", "2h30m", "nan"])
def test_a_malformed_duration_is_named(text: str) -> None:
    with pytest.raises(UsageError, match=r"malformed --time-limit"):
        duration(text, "--time-limit")


@pytest.mark.parametrize("text", ["", "8Q", "G", "-1G", "0M", "8 GB extra"])
def test_a_malformed_size_is_named(text: str) -> None:
    with pytest.raises(UsageError, match=r"malformed --memory"):
        size(text, "--memory")


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(7200, "2h"), (5, "5s"), (90, "90s"), (5400, "90m"), (86400, "1d"), (0.5, "0.5s")],
)
def test_durations_are_written_back_short(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert duration(text) == seconds


@pytest.mark.parametrize(
    ("count", "text"),
    [
        (300 * 2**20, "300M"),
        (8 * 2**30, "8G"),
        (3 * 2**29, "1.5G"),
        (100, "100B"),
        (2_400_000_000, "2.2G"),
    ],  # a measured size: to a tenth
)
def test_sizes_are_written_back_short(count: int, text: str) -> None:
    assert format_size(count) == text


def test_jobs_needing_gpus_go_to_the_queues_only_workers_with_as_many_consume() -> None:
    assert Limits().queue(None) is None
    assert Limits().queue("big") == "big"
    assert Limits(gpus=2).queue(None) == "dbdict.gpus2"
    assert Limits(gpus=2).queue("big") == "big.gpus2"
    assert [gpus_needed(name) for name in ("dbdict", "dbdict.gpus2", "big.gpus12", None)] == [
        0,
        2,
        12,
        0,
    ]


def test_limits_a_later_release_wrote_are_left_out_not_fatal() -> None:
    """A booked job never fails on its limits: a value this release does not know is
    dropped, the others kept."""
    record = {"time_limit": 60.0, "on_time_limit": "checkpoint", "gpus": 1, "new_key": 3}
    assert Limits.from_record(record) == Limits(time_limit=60.0, gpus=1)


def test_a_job_requeued_at_its_time_limit_must_have_saved() -> None:
    requeue = Limits(time_limit=60.0, on_time_limit="requeue")
    assert requeue.at_time_limit(saved=True) == (Status.START, "time limit 1m reached")
    assert requeue.at_time_limit(saved=False) == (
        Status.FAILED, "time limit 1m reached, without a save to resume from"
    )  # fmt: skip
    assert Limits(time_limit=7200.0).at_time_limit(killed=True) == (
        Status.FAILED, "time limit 2h reached (killed after the grace period)"
    )  # fmt: skip


def test_limits_round_trip_through_their_record() -> None:
    limits = Limits.parse("2h", "requeue", "8G", 3, "10s", "ValueError, OSError")
    record = limits.record()
    assert record == {
        "time_limit": 7200.0,
        "on_time_limit": "requeue",
        "memory": 8 * 2**30,
        "retries": 3,
        "retry_backoff": 10.0,
        "retry_on": ["ValueError", "OSError"],
    }
    assert Limits.from_record(record) == limits
    assert Limits().record() is None, "a job without limits keeps none"
    assert Limits.from_record({"time_limit": 5.0, "from_a_later_release": 1}).time_limit == 5.0


def test_only_failures_that_raised_one_of_the_named_types_are_retried() -> None:
    any_type = Limits(retries=2)
    named = Limits(retries=2, retry_on=("OSError",))
    assert any_type.retried(("ValueError", "Exception"))
    assert not any_type.retried(()), "a run a limit ended raised nothing"
    assert named.retried(("FileNotFoundError", "OSError", "Exception"))
    assert not named.retried(("ValueError", "Exception"))


def test_retry_delays_double_with_bounded_jitter() -> None:
    limits = Limits(retries=5, retry_backoff=1.0)
    for failures, base in ((1, 1.0), (2, 2.0), (3, 4.0)):
        delays = [limits.retry_delay(failures) for _ in range(50)]
        assert all(base <= delay <= base * 1.5 for delay in delays)
        assert len(set(delays)) > 1, "jittered"


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("--time-limit", "2x", "--time-limit"),
        ("--memory", "lots", "--memory"),
        ("--retry-backoff", "soon", "--retry-backoff"),
        ("--retry-on", "Value Error", "--retry-on"),
        ("--on-time-limit", "retry", "--on-time-limit"),
        ("--retries", "-1", "--retries"),
        ("--gpus", "-1", "--gpus"),
        ("--max-running", "0", "--max-running"),
        ("--group", "my group", "--group"),
        ("--group", "mine", "--max-running"),
        ("--gpus", "two", "--gpus"),
    ],
)
def test_schedule_refuses_a_malformed_limit_in_one_line_and_stores_nothing(
    tmp_path: Path, option: str, value: str, named: str
) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}/jobs"
    done = dbdict(
        "schedule", "--db", db, "examples.count.experiment", "target=3", option, value, cwd=tmp_path
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert named in done.stderr.strip().splitlines()[-1], done.stderr
    assert not (tmp_path / "jobs.db").exists() or JobStore.open(db).jobs() == []


def test_schedule_keeps_the_limits_with_each_job(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}/jobs"
    done = dbdict(
        "schedule",
        "--db",
        db,
        "--no-enqueue",
        "examples.count.experiment",
        "target=range(2)",
        "--time-limit",
        "90m",
        "--memory",
        "2G",
        "--retries",
        "1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    jobs = JobStore.open(db).jobs([Status.START])
    assert len(jobs) == 2
    for job in jobs:
        assert Limits.from_record(job.limits) == Limits(
            time_limit=5400.0, memory=2 * 2**30, retries=1
        )
    shown = dbdict("show", "--db", db, str(jobs[0].id), cwd=tmp_path)
    assert "time limit 90m (then fail), memory 2G, 1 retry (from 30s)" in shown.stdout


def test_a_group_keeps_one_cap(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}/jobs"
    common = ["schedule", "--db", db, "--no-enqueue", "--group", "g"]
    first = dbdict(*common, "--max-running", "2", "examples.count.experiment", "target=1",
                   cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr
    other = dbdict(*common, "--max-running", "3", "examples.count.experiment", "target=2",
                   cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2
    assert other.stderr.strip() == (
        "dbdict: group 'g' has --max-running 2: give its jobs the same cap (or another --group)"
    )
    assert len(JobStore.open(db).jobs()) == 1, "nothing of the second stored"


def test_schedule_force_runs_a_job_again_with_the_new_limits(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'jobs.db'}/jobs"
    job = ["examples.count.experiment", "target=1", "--no-enqueue"]
    first = dbdict("schedule", "--db", db, *job, "--memory", "300M", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    store = JobStore.open(db)
    booked = store.book()
    assert booked is not None
    store.finish(booked, Status.FAILED, error="out of memory (limit 300M)")
    again = dbdict("schedule", "--db", db, *job, "--memory", "1G", "--force", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    (rerun,) = store.jobs()
    assert rerun.status is Status.START
    assert Limits.from_record(rerun.limits) == Limits(memory=2**30)
