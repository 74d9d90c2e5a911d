"""A dead run's release by its own supervisor, beside other writes to its row."""

from __future__ import annotations

import threading

from sqlalchemy import update

from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore


def test_a_run_whose_process_died_is_put_back_even_while_a_cancel_holds_its_row(
    postgres_location: str,
) -> None:
    """A revoke's cancel and the supervisor's release of its dead run meet on one row: the
    release waits for the cancel, and the job ends CANCELLED, not left RUNNING."""
    store = JobStore.open(postgres_location)
    list(store.insert([NewJob("tests.experiments.mark", {"n": 1})]))
    run = store.book()
    assert run is not None
    t = store.table
    released: list[Status | None] = []
    with store.engine.connect() as holder:
        holder.begin()
        holder.execute(update(t).where(t.c.id == run.id).values(cancel_requested=True))
        releasing = threading.Thread(
            target=lambda: released.append(store.release_dead(run, 3, "its process died"))
        )
        releasing.start()
        releasing.join(1.0)
        assert releasing.is_alive(), "it waits for the row"
        holder.commit()
    releasing.join(30)
    assert released == [Status.CANCELLED]
