"""Fault 9: a stop (the SIGTERM of a revoke or a shutdown) at each step of a run."""

from __future__ import annotations

import pytest

from tests.chaos.conftest import Chaos
from tests.chaos.inject import POINTS

GOES_BACK = {"booking", "pull", "orig.conf", "experiment"}  # stopped before the outcome


@pytest.mark.parametrize("point", POINTS)
def test_a_stop_at_each_step_of_a_run(chaos: Chaos, point: str) -> None:
    """Every job is stopped once, at `point`. Stopped before its outcome is known, it goes
    back to START from its last save and runs again; stopped after, it ends DONE."""
    count = max(10, chaos.jobs // len(POINTS))
    marks = chaos.deployment.cwd / "marks"
    marks.mkdir()
    chaos.schedule(count)
    worker = chaos.deployment.start_worker(
        "-c", "4", "--include", "tests.chaos.inject", CHAOS_STOP_AT=point, CHAOS_MARKS=str(marks)
    )
    verdict = chaos.check(f"stop at {point}", timeout=60 + 2 * count)
    stopped = {int(mark.name) for mark in marks.iterdir()}
    store = chaos.deployment.store()
    if point == "experiment":  # only the jobs that save mid-run get there
        assert len(stopped) >= count // 2, worker.text()[-3000:]
    else:
        assert len(stopped) == count, worker.text()[-3000:]
    ran_again = {job.id for job in store.jobs() if job.attempts > 1}
    assert ran_again == (stopped if point in GOES_BACK else set())
    assert verdict.resumed == len(ran_again)
