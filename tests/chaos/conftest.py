"""The chaos suite's set-up: a cluster to break, the workload, and the summary table.

Every test here is marked `chaos` (run them alone with `pytest -m chaos`). The
workload's size comes from `--chaos-jobs` (default 300); the racing fault runs
at least 1,000. A nightly-sized run is `pytest -m chaos --chaos-jobs 3000`.
"""

from __future__ import annotations

import io
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console
from rich.table import Table

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import Job
from tests.chaos.ledger import FINAL, Verdict, judge, settle
from tests.conftest import DBDICT, wait_until
from tests.deployments import Deployment, environment

VERDICTS = pytest.StashKey[list[Verdict]]()
RACE_JOBS = 1000  # the racing fault's least size
STALE_AFTER = 6.0  # seconds: workers' leases are half of it; reconcile declares a run dead after it
SHOWN_PROBLEMS = 15


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the suite's tests, and give each a time limit that grows with --chaos-jobs."""
    limit = 300 + 2 * max(RACE_JOBS, config.getoption("chaos_jobs"))
    for item in items:
        if "tests/chaos/" in item.nodeid:
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.integration)
            item.add_marker(pytest.mark.timeout(limit))


@dataclass
class Chaos:
    """A cluster, a side-effect file, and the verdicts of the faults played on it."""

    deployment: Deployment
    jobs: int  # the workload's size (--chaos-jobs)
    verdicts: list[Verdict]
    ledger: Path
    watchers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    started: float = 0.0

    def schedule(self, count: int | None = None, pause: float = 0.02, *extra: str) -> list[Job]:
        """Schedule the counting workload: `count` jobs (default: the suite's size)."""
        done = self.deployment.dbdict(
            "schedule", "tests.chaos.workload.counter", f"n=range({count or self.jobs})",
            f"pause={pause}", f"ledger='{self.ledger}'", *extra, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        self.started = time.monotonic()
        return self.deployment.store().jobs()

    def ended(self) -> int:
        """How many jobs are DONE, FAILED or CANCELLED."""
        return sum(job.status in FINAL for job in self.deployment.store().jobs())

    def midway(self, share: float, of: int | None = None) -> None:
        """Wait until `share` of the jobs (`of` them, default: the suite's size) ended while
        others run: the moment to strike."""
        store = self.deployment.store()
        wait_until(
            lambda: self.ended() >= share * (of or self.jobs) and store.jobs(Status.RUNNING),
            f"{share:.0%} of the jobs to end while others run",
            timeout=60 + self.jobs,
        )

    def reconcile_every(self, seconds: float = 1.0) -> None:
        """Keep `dbdict reconcile` running, as Celery beat or a cron job would (with room for
        the suite's own repeated faults before a job counts as one that kills its worker)."""
        command = [DBDICT, "reconcile", "--watch", "--interval", str(seconds),
                   "--max-attempts", "10"]  # fmt: skip
        with open(self.deployment.cwd / "reconcile.log", "ab") as log:
            self.watchers.append(
                subprocess.Popen(command, cwd=self.deployment.cwd, stdout=log,
                                 stderr=subprocess.STDOUT, env=environment(self.deployment.env))
            )  # fmt: skip

    def check(
        self, fault: str, timeout: float, allowed: dict[int, set[Status]] | None = None
    ) -> Verdict:
        """Wait for every job to end, judge the outcome, record it for the summary, and fail
        naming the first problems if there is any."""
        store = self.deployment.store()
        settle(store, timeout)
        verdict = judge(fault, store, self.ledger, self.deployment.exproot, self.started, allowed)
        self.verdicts.append(verdict)
        problems = verdict.problems
        assert not problems, (
            f"{fault}: {len(problems)} problems:\n"
            + "\n".join(problems[:SHOWN_PROBLEMS])
            + self._evidence(problems)
        )
        return verdict

    def _evidence(self, problems: list[str]) -> str:
        """The rows and side-effect lines of the first jobs with a problem, to see why."""
        store = self.deployment.store()
        ids = list(dict.fromkeys(int(m) for p in problems for m in re.findall(r"job (\d+)", p)))
        lines = self.ledger.read_text(encoding="utf-8").splitlines() if self.ledger.exists() else []
        shown = []
        for job_id in ids[:3]:
            job = store.get(job_id)
            shown.append(f"job {job_id}: {job.status.name}, attempts {job.attempts}, run "
                         f"{job.run_id}, state {job.state}, error {job.error!r}")  # fmt: skip
            shown += [f"    {line}" for line in lines if line.startswith(f"{job_id} ")]
        return "\n" + "\n".join(shown)

    def close(self) -> None:
        for watcher in self.watchers:
            watcher.terminate()
            watcher.wait(timeout=30)


@pytest.fixture
def chaos(cluster: Deployment, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """The Postgres and Redis cluster, made ready to break."""
    yield from chaos_on(cluster, request)


def chaos_on(deployment: Deployment, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    """The chaos of a test on `deployment`; its workers and watchers stopped afterwards."""
    deployment.env["DBDICT_STALE_AFTER"] = str(STALE_AFTER)
    deployment.env["DBDICT_GRACE"] = "10"
    verdicts = request.config.stash.setdefault(VERDICTS, [])
    chaos = Chaos(deployment, request.config.getoption("chaos_jobs"), verdicts,
                  deployment.cwd / "side-effects.log")  # fmt: skip
    try:
        yield chaos
    finally:
        chaos.close()
        deployment.close()


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    verdicts = config.stash.get(VERDICTS, [])
    if not verdicts:
        return
    table = Table(title="chaos: every job in exactly one final state, none lost or run twice")
    for column in ("fault", "jobs", "lost", "duplicated", "restarted", "resumed", "seconds"):
        table.add_column(column, justify="left" if column == "fault" else "right")
    for verdict in verdicts:
        table.add_row(verdict.fault, str(verdict.jobs), str(len(verdict.lost)),
                      str(len(verdict.duplicated)), str(len(verdict.restarted)),
                      str(verdict.resumed), f"{verdict.seconds:.0f}")  # fmt: skip
    console = Console(file=io.StringIO(), width=120)
    console.print(table)
    for line in console.file.getvalue().splitlines():  # type: ignore[attr-defined]
        terminalreporter.write_line(line)
