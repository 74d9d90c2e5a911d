"""On the embedded SQLite table, a reader never blocks a writer: a long export (its reader
paused by a slow pipe) lets a schedule and a worker's save go through."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from tests.conftest import DBDICT, dbdict, dbdict_env

JOBS = 3000  # their CSV is far larger than a pipe's buffer: the export stalls mid-stream


def test_a_stalled_export_blocks_no_writer(tmp_path: Path) -> None:
    location = f"sqlite:///{tmp_path}/jobs.db/jobs"
    store = JobStore.open(location)
    params = ({"n": n, "note": "x" * 100} for n in range(JOBS))
    for _ in store.insert(NewJob("examples.count.experiment", p) for p in params):
        pass
    export = subprocess.Popen(
        [DBDICT, "export", "--db", location],
        cwd=tmp_path,
        env=dbdict_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert export.stdout is not None
        first = export.stdout.read(1000)  # it is streaming: its read transaction is open
        assert first.startswith(b"id,status")
        args = ["--no-enqueue", "--db", location, "examples.count.experiment", "n=-1"]
        scheduled = dbdict("schedule", *args, cwd=tmp_path, timeout=120)
        assert scheduled.returncode == 0, scheduled.stderr
        job = store.book()
        assert job is not None
        assert store.save(job, {"n": job.state["n"], "saved": True})
        assert store.finish(job, Status.DONE) is Status.DONE
        rest = export.stdout.read()
        _, err = export.communicate(timeout=120)
    finally:
        export.kill()
    assert export.returncode == 0, err
    assert (first + rest).count(b"\n") == JOBS + 1, "the export saw its snapshot: no new job"
