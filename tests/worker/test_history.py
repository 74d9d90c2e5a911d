"""Run history with real `celery -A dbdict_celery worker` processes: every attempt of a job
recorded with where it ran, which code and environment, and how it ended; `dbdict show` and
`dbdict diff` read it back.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.conftest import REPO, dbdict, git, wait_until
from tests.deployments import Deployment, postgres_redis, scheduled, wait_for_statuses

pytestmark = pytest.mark.integration

SEARCH = """
def experiment(state, channel):
    state.result = state.x * SCALE
"""


def _running_with_count(store: JobStore, job_id: int, at_least: int, attempt: int) -> object:
    job = store.get(job_id)
    running = job.status is Status.RUNNING and job.attempts == attempt
    return job if running and job.state.get("count", 0) >= at_least else None


def _record(files: Path, attempt: int) -> Path:
    """The one record file of attempt `attempt` among a job's files."""
    (found,) = files.glob(f"dbdict-attempt-{attempt}-*.json")
    return found


def _show(deployment: Deployment, job_id: int) -> dict[str, Any]:
    shown = deployment.dbdict("show", str(job_id), "--json")
    assert shown.returncode == 0, shown.stderr
    record: dict[str, Any] = json.loads(shown.stdout)
    return record


def test_a_job_preempted_twice_then_finished_shows_three_attempts(cluster: Deployment) -> None:
    (job,) = scheduled(cluster, "examples.count.experiment", "target=40", "interval=0.1")
    store = cluster.store()
    first = cluster.start_worker("-c", "1")
    wait_until(lambda: _running_with_count(store, job.id, 3, attempt=1), "3 steps of run 1")
    first.signal(signal.SIGTERM)  # a preemption: the worker's warm shutdown
    assert first.process.wait(timeout=30) == 0, first.text()
    cluster.start_worker("-c", "1")
    running = wait_until(lambda: _running_with_count(store, job.id, 6, attempt=2), "run 2")
    assert isinstance(running, type(job))
    assert running.pid is not None
    os.kill(running.pid, signal.SIGTERM)  # the run itself is signalled (as Slurm may do)
    wait_for_statuses(store, Status.DONE, timeout=90)

    record = _show(cluster, job.id)
    assert record["attempts"] == 3
    history = record["history"]
    assert [(run["attempt"], run["outcome"], run["reason"]) for run in history] == [
        (1, "incomplete", "worker shutdown"),
        (2, "incomplete", "SIGTERM"),
        (3, "done", None),
    ]
    assert all(run["host"] == os.uname().nodename for run in history)
    assert [run["worker"].split("-")[0] for run in history] == ["w1", "w2", "w2"]
    assert history[1]["pid"] == running.pid
    assert all(run["finished_at"] >= run["started_at"] for run in history)
    assert len({run["run_id"] for run in history}) == 3
    files = cluster.job_files(job.id)
    assert sorted(path.name for path in files.glob("dbdict-attempt-*.json")) == [
        f"dbdict-attempt-{run['attempt']}-{run['run_id'][:8]}.json" for run in history
    ], "each run's record is kept among the job's files"
    text = cluster.dbdict("show", str(job.id))
    assert text.returncode == 0, text.stderr
    assert "worker shutdown" in text.stdout
    assert "SIGTERM" in text.stdout


def _fake_package(where: Path, version: str) -> Path:
    """A folder that, on the path, makes `fakelib` look installed at `version`."""
    info = where / f"fakelib-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: fakelib\nVersion: {version}\n", encoding="utf-8"
    )
    return where


def test_a_dirty_checkout_is_recorded_and_dbdict_diff_names_what_changed(
    cluster: Deployment,
) -> None:
    repo = cluster.cwd / "research"
    repo.mkdir()
    (repo / "search.py").write_text("SCALE = 2\n" + SEARCH, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "search.py")
    git(repo, "commit", "-q", "-m", "first")
    first_commit = git(repo, "rev-parse", "HEAD")
    (repo / "search.py").write_text("SCALE = 3\n" + SEARCH, encoding="utf-8")  # uncommitted

    def schedule(*args: str) -> None:
        done = cluster.dbdict("schedule", "search.experiment", *args, cwd=repo)
        assert done.returncode == 0, done.stderr

    def worker(packages: Path) -> Any:
        path = os.pathsep.join([str(repo), str(packages), str(REPO)])
        return cluster.start_worker("-c", "1", cwd=repo, PYTHONPATH=path)

    schedule("x=1")
    store = cluster.store()
    dirty_worker = worker(_fake_package(cluster.cwd / "site1", "1.0"))
    wait_for_statuses(store, Status.DONE)
    (job,) = store.jobs()
    assert job.state["result"] == 3, "the uncommitted code ran"
    (dirty,) = store.attempts(job.id)
    assert (dirty.code_commit, dirty.code_branch, dirty.code_dirty) == (first_commit, "main", True)
    assert dirty.code_repository == str(repo)
    record = json.loads(_record(cluster.job_files(job.id), 1).read_text())
    assert record["code"]["commit"] == first_commit
    assert record["code"]["dirty"] is True
    diff = (cluster.job_files(job.id) / record["code"]["diff"]).read_text()
    assert "-SCALE = 2" in diff
    assert "+SCALE = 3" in diff

    dirty_worker.signal(signal.SIGTERM)
    assert dirty_worker.process.wait(timeout=30) == 0
    git(repo, "commit", "-q", "-am", "scale by 3")
    clean_commit = git(repo, "rev-parse", "HEAD")
    worker(_fake_package(cluster.cwd / "site2", "2.0"))
    again = cluster.dbdict("requeue", "--status", "done", str(job.id))  # the same job, run again
    assert again.returncode == 0, again.stderr
    wait_until(lambda: len(store.attempts(job.id)) == 2 and store.get(job.id).status
               is Status.DONE, "the second run")  # fmt: skip
    clean = store.attempts(job.id)[1]
    assert (clean.code_commit, clean.code_dirty) == (clean_commit, False)
    assert not list(cluster.job_files(job.id).glob("dbdict-attempt-2-*.diff"))

    compared = cluster.dbdict("diff", f"{job.id}@1", f"{job.id}@2", "--json")
    assert compared.returncode == 0, compared.stderr
    found = {(d["kind"], d["name"]): (d["left"], d["right"])
             for d in json.loads(compared.stdout)["differences"]}  # fmt: skip
    assert found[("code", "commit")] == (first_commit, clean_commit)
    assert found[("code", "dirty")] == (True, False)
    assert found[("package", "fakelib")] == ("1.0", "2.0")
    assert not any(kind == "parameter" for kind, _ in found), "the same parameters"

    schedule("x=5")
    wait_for_statuses(store, Status.DONE)
    other = max(job.id for job in store.jobs())
    shown = cluster.dbdict("diff", str(job.id), str(other))
    assert shown.returncode == 0, shown.stderr
    assert "parameter" in shown.stdout
    assert "commit" not in shown.stdout, "both last ran the clean commit"


def test_a_worker_killed_mid_job_leaves_an_attempt_reconcile_marks_lost(
    cluster: Deployment,
) -> None:
    (job,) = scheduled(cluster, "examples.count.experiment", "target=30", "interval=0.1")
    store = cluster.store()
    killed = cluster.start_worker("-c", "1")
    wait_until(lambda: _running_with_count(store, job.id, 2, attempt=1), "2 saved steps")
    killed.kill()  # SIGKILL: nothing of the worker records anything
    (open_attempt,) = store.attempts(job.id)
    assert open_attempt.outcome is None, "a dead run's attempt stays open until found"

    def reconciled() -> bool:
        done = cluster.dbdict("reconcile", "--stale-after", "3")
        assert done.returncode == 0, done.stderr
        return store.attempts(job.id)[0].outcome is not None

    wait_until(reconciled, "reconcile to find the run dead", timeout=60)
    (lost,) = store.attempts(job.id)
    assert (lost.outcome.value if lost.outcome else None, lost.reason) == (
        "lost", "stale heartbeat",
    )  # fmt: skip
    assert lost.finished_at is not None
    assert "no heartbeat" in (lost.error or "")
    cluster.start_worker("-c", "1")
    wait_for_statuses(store, Status.DONE, timeout=90)
    assert [a.outcome.value if a.outcome else None for a in store.attempts(job.id)] == [
        "lost", "done",
    ]  # fmt: skip


def _with_password(location: str, password: str) -> str:
    parts = urlsplit(location)
    user, _, host = parts.netloc.rpartition("@")
    return urlunsplit(parts._replace(netloc=f"{user.split(':')[0]}:{password}@{host}"))


def test_no_secret_reaches_the_attempt_rows_or_files(
    tmp_path: Path, postgres_location: str, redis_url: str
) -> None:
    """The database's password, secret-named variables (even allow-listed by mistake), and a
    token in the repository's remote URL and in its uncommitted changes are all masked."""
    db_password, token, aws = "Db-Pa55word-xyz", "tok-4bcd3f9876", "AKIAsecretValue123"
    location = _with_password(postgres_location, db_password)  # trust auth: any password works
    cluster = postgres_redis(tmp_path, location, redis_url)
    secrets = {
        "MY_API_TOKEN": token,
        "AWS_SECRET_ACCESS_KEY": aws,
        "DBDICT_CAPTURE_ENV": "MY_API_TOKEN,AWS_SECRET_ACCESS_KEY,OMP_NUM_THREADS",
        "OMP_NUM_THREADS": "3",
    }
    repo = tmp_path / "research"
    repo.mkdir()
    (repo / "search.py").write_text("SCALE = 2\n" + SEARCH, encoding="utf-8")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "remote", "add", "origin", f"https://someone:{token}@github.com/lab/research.git")
    git(repo, "add", "search.py")
    git(repo, "commit", "-q", "-m", "first")
    (repo / "search.py").write_text(f'SCALE = 2\nKEY = "{token}"\n' + SEARCH, encoding="utf-8")
    try:
        cluster.env.update(secrets)  # the worker's environment, and the commands'
        done = cluster.dbdict("schedule", "search.experiment", "x=1", cwd=repo)
        assert done.returncode == 0, done.stderr
        path = os.pathsep.join([str(repo), str(REPO)])
        cluster.start_worker("-c", "1", cwd=repo, PYTHONPATH=path)
        store = cluster.store()
        wait_for_statuses(store, Status.DONE)
        (job,) = store.jobs()
        (attempt,) = store.attempts(job.id)
        assert attempt.variables == {"OMP_NUM_THREADS": "3"}, "capture ran, secrets left out"
        assert attempt.code_dirty is True
        with store.engine.connect() as connection:
            rows = repr(connection.execute(store.attempt_table.select()).all())
        files = [p for p in cluster.job_files(job.id).rglob("*") if p.is_file()]
        kept = rows + "".join(p.read_text(errors="replace") for p in files)
        record = json.loads(_record(cluster.job_files(job.id), 1).read_text())
        assert record["code"]["remote"] == "https://someone:***@github.com/lab/research.git"
        assert 'KEY = "***"' in kept, "the diff is kept, the token in it masked"
        for secret in (db_password, token, aws):
            assert secret not in kept
        shown = cluster.dbdict("show", str(job.id), "--json")
        assert shown.returncode == 0, shown.stderr
        assert not any(secret in shown.stdout for secret in (db_password, token, aws))
    finally:
        cluster.close()


def test_capture_that_breaks_never_fails_the_job(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code and the environment capture raising: the job runs, its attempt says nothing
    of what could not be told."""
    from dbdict_celery.store.job import NewJob
    from dbdict_celery.worker import dbrunner, execution

    def broken(*_: object) -> None:
        raise RuntimeError("capture exploded")

    monkeypatch.setattr(execution, "code_of", broken)
    monkeypatch.setattr(dbrunner, "environment", broken)
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.write_files", {"runs": 0})]))
    booking = dbrunner.book(store, exproot=str(tmp_path / "exproot"))
    assert booking is not None
    assert dbrunner.run_booked(store, booking).status is Status.DONE
    (attempt,) = store.attempts(booking.job.id)
    assert attempt.outcome is not None
    assert (attempt.outcome.value, attempt.code_commit, attempt.environment) == (
        "done", "unknown", None,
    )  # fmt: skip


def test_with_capture_off_runs_are_still_historied(
    location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbdict_celery.store.job import NewJob
    from dbdict_celery.worker import dbrunner

    monkeypatch.setenv("DBDICT_CAPTURE", "off")
    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.write_files", {"runs": 0})]))
    booking = dbrunner.book(store, exproot=str(tmp_path / "exproot"))
    assert booking is not None
    dbrunner.run_booked(store, booking)
    (attempt,) = store.attempts(booking.job.id)
    assert attempt.outcome is not None
    assert (attempt.outcome.value, attempt.code_commit, attempt.python) == ("done", None, None)
    files = tmp_path / "exproot" / store.path.dbname / store.path.table / str(booking.job.id)
    assert (files / "current.conf").is_file()
    assert not list(files.glob("dbdict-attempt-*")), "no record file"


def test_show_list_and_diff_from_the_command_line(location: str, tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return dbdict(*args, "--db", location, cwd=tmp_path)

    root = str(tmp_path / "root")
    scheduled = run("schedule", "--no-enqueue", "--exproot", root,
                    "tests.experiments.write_files", "runs=choice(0, 1)")  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    ran = dbdict("sql", "--db", location, "-n", "1", root, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    first, never = (job.id for job in JobStore.open(location).jobs())

    compared = run("diff", str(first), str(never), "--json")
    assert compared.returncode == 0, compared.stderr
    found = {(d["kind"], d["name"]): (d["left"], d["right"])
             for d in json.loads(compared.stdout)["differences"]}  # fmt: skip
    assert found == {
        ("parameter", "runs"): (0, 1),
        ("run", "captured"): (True, False),
        ("run", "ran"): (True, False),
    }, "a job never run: no flood of packages"
    refusals = [
        (("²", "1"), "malformed run '²'"),
        ((f"{first}@9", str(never)), f"job {first} has no attempt 9"),
    ]
    for refs, message in refusals:
        refused = run("diff", *refs)
        assert refused.returncode == 2
        assert message in refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "Runs: none yet" in run("show", str(never)).stdout
    listed = run("list", "--attempt", "outcome=done", "--json")
    assert [job["id"] for job in json.loads(listed.stdout)] == [first]
    assert run("list", "--attempt", "outcome=finished").returncode == 2


@pytest.mark.ssh
def test_over_ssh_the_record_travels_with_the_files(
    location: str, tmp_path: Path, ssh_command: str
) -> None:
    """A local exproot gets the record written in place; an ssh one gets it by the push."""
    root = tmp_path / "root"
    scheduled = dbdict("schedule", "--no-enqueue", "--db", location,
                       "tests.experiments.write_files", "runs=0", cwd=tmp_path)  # fmt: skip
    assert scheduled.returncode == 0, scheduled.stderr
    ran = dbdict("sql", "--db", location, "-n", "1", f"ssh://127.0.0.1:{root}", cwd=tmp_path,
                 DBDICT_SSH_COMMAND=ssh_command)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    store = JobStore.open(location)
    (job,) = store.jobs()
    files = root / store.path.dbname / store.path.table / str(job.id)
    record = json.loads(_record(files, 1).read_text())
    assert (record["job"], record["attempt"], record["run_id"]) == (job.id, 1, job.run_id)
    assert record["environment"] == store.attempts(job.id)[0].environment


def test_a_run_given_back_and_the_next_keep_their_own_records(
    location: str, tmp_path: Path
) -> None:
    """A given-back run leaves its number to the next: each run's record is its own, named
    by its run id, and the push of the next never overwrites it."""
    from dbdict_celery.errors import NotRunnableHere
    from dbdict_celery.store.job import NewJob
    from dbdict_celery.worker import dbrunner

    store = JobStore.open(location)
    list(store.insert([NewJob("tests.experiments.gives_back_first", {"tried": False})]))
    root = str(tmp_path / "exproot")
    given_back = dbrunner.book(store, exproot=root)
    assert given_back is not None
    with pytest.raises(NotRunnableHere):
        dbrunner.run_booked(store, given_back)
    second = dbrunner.book(store, exproot=root)
    assert second is not None
    assert dbrunner.run_booked(store, second).status is Status.DONE
    files = tmp_path / "exproot" / store.path.dbname / store.path.table / str(second.job.id)
    records = {
        json.loads(path.read_text())["run_id"]: path.name
        for path in files.glob("dbdict-attempt-*.json")
    }
    assert records == {
        run.job.run_id: f"dbdict-attempt-1-{(run.job.run_id or '')[:8]}.json"
        for run in (given_back, second)
    }
    assert [a.outcome.value if a.outcome else None for a in store.attempts(second.job.id)] == [
        "given back", "done",
    ]  # fmt: skip
