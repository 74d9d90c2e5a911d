"""What a chaos test checks after its fault: the table, the side-effect file, the exproot.

A job passes when it ended in the final status it should have, its runs never
overlapped (the side-effect lines of one run never come after another run's
began), no run did the same step twice, a run after a saved step carried on
from that save (never from 0), and, DONE, its files in the exproot name the
run the row says finished it, with every step counted, and its curve holds
each step once, each point reported by a run that counted that step.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.attempt import Attempt
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore
from tests.chaos.workload import checkpoints, steps_of
from tests.conftest import read_conf

FINAL = frozenset({Status.DONE, Status.FAILED, Status.CANCELLED})


@dataclass
class Verdict:
    """One fault's outcome, as the summary table shows it."""

    fault: str
    jobs: int
    lost: list[str] = field(default_factory=list)  # not in the final status they should be
    duplicated: list[str] = field(default_factory=list)  # work that ran twice
    restarted: list[str] = field(default_factory=list)  # a run that ignored the last save
    resumed: int = 0  # jobs booked more than once: they went back and ran again
    seconds: float = 0.0

    @property
    def problems(self) -> list[str]:
        return [*self.lost, *self.duplicated, *self.restarted]


def settle(store: JobStore, timeout: float) -> None:
    """Wait until every job is DONE, FAILED or CANCELLED, or until the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(job.status in FINAL for job in store.jobs()):
            return
        time.sleep(0.5)


def judge(
    fault: str,
    store: JobStore,
    ledger: Path,
    exproot: Path,
    started: float,
    allowed: Mapping[int, Collection[Status]] | None = None,
) -> Verdict:
    """Check every job of `store`; each must end DONE unless `allowed` names its statuses."""
    jobs = store.jobs()
    runs = _runs_by_job(ledger)
    verdict = Verdict(fault, len(jobs), seconds=time.monotonic() - started)
    for job in jobs:
        wanted = (allowed or {}).get(job.id, {Status.DONE})
        if job.status not in wanted:
            verdict.lost.append(f"job {job.id} is {job.status.name}, not {_names(wanted)}")
        job_runs = runs.get(job.id, [])
        verdict.resumed += job.attempts > 1
        _check_runs(job, job_runs, verdict)
        if job.status is Status.DONE:
            _check_done(job, job_runs, exproot, store, verdict)
    return verdict


Run = tuple[str, list[int]]  # a run id and the steps it wrote, in order


def _runs_by_job(ledger: Path) -> dict[int, list[Run]]:
    runs: dict[int, list[Run]] = defaultdict(list)
    if not ledger.exists():
        return runs
    for line in ledger.read_text(encoding="utf-8").splitlines():
        job_id, run_id, step = line.split()
        job_runs = runs[int(job_id)]
        if job_runs and job_runs[-1][0] == run_id:
            job_runs[-1][1].append(int(step))
        else:
            job_runs.append((run_id, [int(step)]))
    return runs


def _check_runs(job: Job, runs: list[Run], verdict: Verdict) -> None:
    seen: set[str] = set()
    saved = 0  # the last step the previous runs surely saved
    for run_id, steps in runs:
        if run_id in seen:
            verdict.duplicated.append(f"job {job.id}: run {run_id} overlapped another run")
        seen.add(run_id)
        if steps != list(range(steps[0], steps[0] + len(steps))):
            verdict.duplicated.append(f"job {job.id}: run {run_id} counted {steps}")
        resumed_from = steps[0] - 1
        if checkpoints(int(job.params["n"])) and resumed_from < saved:
            verdict.restarted.append(
                f"job {job.id}: run {run_id} began at step {steps[0]} after step {saved} was saved"
            )
        if checkpoints(int(job.params["n"])):
            saved = max(saved, steps[-1] - 1)  # a kill may come before the last step's save


def _check_done(
    job: Job, runs: list[Run], exproot: Path, store: JobStore, verdict: Verdict
) -> None:
    steps = steps_of(int(job.params["n"]))
    result = exproot / store.path.dbname / store.path.table / str(job.id) / "result.txt"
    expected = f"{job.run_id} {steps}"
    found = result.read_text(encoding="utf-8").strip() if result.exists() else "no result.txt"
    if found != expected:
        verdict.lost.append(f"job {job.id} is DONE but its files hold {found!r}, not {expected!r}")
    conf = result.with_name("current.conf")
    saved = read_conf(conf) if conf.exists() else {}
    if (saved.get("dbdict.run_id"), saved.get("dbdict.status")) != (job.run_id, Status.DONE):
        verdict.duplicated.append(
            f"job {job.id} is DONE by run {job.run_id}, but its current.conf is run "
            f"{saved.get('dbdict.run_id')}'s, status {saved.get('dbdict.status')}"
        )
    if job.state.get("step") != steps:
        verdict.lost.append(f"job {job.id} is DONE at step {job.state.get('step')} of {steps}")
    writers = [run_id for run_id, _ in runs]  # the last run may have had nothing left to count
    if job.run_id in writers and writers[-1] != job.run_id:
        verdict.duplicated.append(f"job {job.id}: run {writers[-1]} wrote after the last run")
    _check_curve(job, runs, store.attempts(job.id), store, verdict)


def _check_curve(
    job: Job, runs: list[Run], attempts: list[Attempt], store: JobStore, verdict: Verdict
) -> None:
    """A DONE job's curve: `progress` at each step once, each point by a run that counted
    that step (a run that lost the job, or whose steps were not saved, reported none)."""
    points = store.metrics(job.id, keys=["progress"])
    steps = [point.step for point in points]
    if steps != list(range(1, steps_of(int(job.params["n"])) + 1)):
        verdict.duplicated.append(f"job {job.id}: its curve has steps {steps}")
    counted = {(run_id, step) for run_id, run_steps in runs for step in run_steps}
    run_ids: dict[int, set[str]] = defaultdict(set)  # a run given back shares its number
    for attempt in attempts:
        run_ids[attempt.attempt].add(attempt.run_id)
    for point in points:
        counted_it = any((run_id, point.step) in counted for run_id in run_ids[point.run or 0])
        if not counted_it or point.value != point.step:
            verdict.duplicated.append(
                f"job {job.id}: step {point.step} of its curve ({point.value}) is run "
                f"{point.run}'s, which did not count it"
            )


def _names(statuses: Collection[Status]) -> str:
    return "/".join(sorted(status.name for status in statuses))
