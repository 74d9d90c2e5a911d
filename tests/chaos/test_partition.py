"""Fault 10: a worker cut off from Postgres while it runs jobs (its broker still answers).

Its runs keep going but nothing they write lands; reconcile declares them dead
and another worker runs their jobs to DONE. Once the link heals, the first
runs' held writes arrive: the run_id fencing refuses every one, and the files
they would push never replace the ones of the runs that took over.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from sqlalchemy import make_url, update

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from tests.chaos.conftest import STALE_AFTER, Chaos
from tests.chaos.faults import pool_children
from tests.chaos.link import Link
from tests.conftest import wait_until

CUTS = 3


@pytest.fixture
def link_to_postgres(chaos: Chaos) -> Iterator[Link]:
    url = make_url(chaos.deployment.location)
    link = Link((url.host or "127.0.0.1", url.port or 5432))
    yield link
    link.close()


def test_a_partitioned_worker_never_overwrites_the_run_that_took_over(
    chaos: Chaos, link_to_postgres: Link
) -> None:
    chaos.schedule(pause=0.3)  # jobs of about a second: the cut finds some running
    chaos.reconcile_every(1.0)
    direct = make_url(chaos.deployment.location)
    through_link = direct.set(host="127.0.0.1", port=link_to_postgres.port)
    cut_off = chaos.deployment.start_worker(
        "-c", "2", DBDICT_DB=through_link.render_as_string(hide_password=False)
    )
    chaos.deployment.start_worker("-c", "2")
    store = chaos.deployment.store()
    taken_over: dict[int, str] = {}  # job id -> the run id it had when its worker was cut off
    for cut in range(1, CUTS + 1):
        chaos.midway(cut / (CUTS + 2))
        running = wait_until(
            lambda: [j for j in store.jobs(Status.RUNNING) if j.pid in pool_children(cut_off)],
            "the worker to be cut off to run jobs",
            timeout=120,
        )
        link_to_postgres.cut()
        stuck = {job.id: job.run_id or "" for job in running}
        wait_until(lambda: all(store.get(j).status is Status.DONE for j in stuck),  # noqa: B023
                   "the cut-off runs' jobs to be done elsewhere", timeout=120)  # fmt: skip
        link_to_postgres.heal()
        taken_over.update(stuck)
    chaos.check("partition from Postgres", timeout=120 + chaos.jobs)
    for job_id, first_run in taken_over.items():
        assert store.get(job_id).run_id != first_run, f"job {job_id} was finished elsewhere"
    wait_until(lambda: "is no longer this run's" in cut_off.text(),
               "the cut-off worker to learn its runs were taken over", timeout=60)  # fmt: skip


def test_a_run_cut_off_inside_a_transaction_does_not_block_its_takeover(
    chaos: Chaos, link_to_postgres: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cut between an UPDATE and its COMMIT, a run's session would hold the row's lock until
    TCP gave up, hours later. The server ends it after half the staleness window, so
    reconcile (which never waits on a locked row) puts the job back soon after."""
    (job,) = chaos.schedule(1, 0.02, "--no-enqueue")
    direct = chaos.deployment.store()
    monkeypatch.setenv("DBDICT_STALE_AFTER", str(STALE_AFTER))  # as on the workers
    through_link = make_url(chaos.deployment.location).set(port=link_to_postgres.port)
    cut_off = JobStore.open(through_link.render_as_string(hide_password=False))
    run = cut_off.book(job.id)
    assert run is not None
    t = cut_off.table
    connection = cut_off.engine.connect()
    connection.begin()
    connection.execute(update(t).where(t.c.id == job.id).values(state={"step": 1}))
    link_to_postgres.cut()  # the COMMIT never arrives; the row stays locked
    try:
        wait_until(lambda: _reconcile(chaos) and direct.get(job.id).status is Status.START,
                   "reconcile to take the job back", timeout=60 + 4 * STALE_AFTER)  # fmt: skip
        assert "step" not in direct.get(job.id).state, "the cut-off UPDATE never landed"
    finally:
        link_to_postgres.close()
        with contextlib.suppress(Exception):
            connection.close()


def _reconcile(chaos: Chaos) -> bool:
    done = chaos.deployment.dbdict("reconcile", "--stale-after", str(STALE_AFTER), timeout=60)
    assert done.returncode == 0, done.stderr
    return True
