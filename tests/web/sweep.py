"""A small sweep in a job table, in every state a dashboard shows: done with a curve and
output, failed with a traceback, running, waiting; and an optimize study's trials."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.search.definition import Definition
from dbdict_celery.store.job import Job, NewJob, job_dir
from dbdict_celery.store.store import JobStore

EXPERIMENT = "tests.experiments.curve"
STEPS = 40
STUDY = "bowl-study"
TRIALS = 4


@dataclass(frozen=True)
class Sweep:
    """The ids of the sweep's jobs, by what they went through."""

    done: int
    failed: int
    running: int
    waiting: list[int]


def fill(store: JobStore, exproot: Path) -> Sweep:
    """Six jobs (lr 0.1 to 0.6): the first DONE with a `loss` curve and output in its files,
    the second FAILED, the third RUNNING, the rest START."""
    new = [NewJob(EXPERIMENT, {"lr": lr / 10, "model": "mlp"}) for lr in range(1, 7)]
    ids = [each.id for batch in store.insert(new) for each in batch]
    done = _run(store, ids[0], exproot)
    store.finish(done, Status.DONE, {**done.state, "loss": 0.125})
    failed = _run(store, ids[1], exproot)
    store.finish(failed, Status.FAILED, error="Traceback (most recent call last):\nValueError: lr")
    _run(store, ids[2], exproot)
    return Sweep(ids[0], ids[1], ids[2], ids[3:])


def fill_study(store: JobStore, exproot: Path) -> list[int]:
    """An optimize study of TRIALS trials of `loss:min`, all DONE, each one better than the
    one before but the third."""
    definition = Definition(
        "tests.experiments.bowl", ("x=uniform(0, 1)",), "loss:min", TRIALS, name=STUDY
    )
    store.define_study(STUDY, definition.record())
    new = [
        NewJob(definition.experiment, {"x": n / 10}, study=STUDY, trial=n) for n in range(TRIALS)
    ]
    ids = [each.id for batch in store.insert(new) for each in batch]
    for n, job_id in enumerate(ids):
        job = _run(store, job_id, exproot)
        store.finish(job, Status.DONE, {**job.state, "loss": 9.0 if n == 2 else 1.0 / (n + 1)})
    return ids


def _run(store: JobStore, job_id: int, exproot: Path) -> Job:
    """Book a job and save a curve of STEPS steps, with its output where its files go."""
    job = store.book(job_id, host="node1", pid=4242, worker="dbdict-1@node1")
    assert job is not None
    reports = Reports()
    for step in range(STEPS):
        reports.add(step, {"loss": math.exp(-step / 10) * job.params.get("lr", 1.0)})
    store.save(job, dict(job.params), exproot=str(exproot), reports=reports)
    files = Path(str(job_dir(str(exproot), store.path, job_id)))
    files.mkdir(parents=True, exist_ok=True)
    (files / "stdout").write_text("".join(f"epoch {n}\n" for n in range(300)))
    return job
