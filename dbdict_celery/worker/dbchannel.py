"""The DB channel: an RSyncChannel whose saves also land in the job's row.

This is the original's DBRSyncChannel. The working directory is pulled from
`EXPROOT/dbname/tablename/ID` and pushed back on every save; every save also
writes the flattened state to the row; a heartbeat thread keeps the row's
`heartbeat_at` fresh even when the experiment never saves. When the table
says the job is no longer this run's (cancelled, or taken over after being
declared dead), the experiment is asked to stop.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from typing import Any

from dbdict_celery.errors import ExprootUnreachable, StoreError, SyncError
from dbdict_celery.experiment.channel import Experiment, RSyncChannel
from dbdict_celery.experiment.params import DD, expand, flatten
from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.store.job import Job, job_dir
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.values import encode

log = logging.getLogger(__name__)

BOOKKEEPING = "dbdict"


def row_state(state: DD) -> dict[str, Any]:
    """The flattened state as the row keeps it (the `dbdict.*` bookkeeping lives in columns).

    Raises UnstorableValue, naming the key, for a value the table cannot keep:
    a save checks this first, so its files and the row keep the last good save.
    """
    flat = {
        key: value for key, value in flatten(state).items() if key.partition(".")[0] != BOOKKEEPING
    }
    encode(flat)
    return flat


class DBRSyncChannel(RSyncChannel):
    """Runs a booked job: files mirrored to its exproot, state saved to its row."""

    def __init__(
        self,
        store: JobStore,
        job: Job,
        path: str,
        exproot: str,
        experiment: Experiment,
        heartbeat_interval: float,
        stop: StopFlag | None = None,
    ) -> None:
        state = expand(job.state)
        state[BOOKKEEPING] = DD(experiment=job.experiment, status=self.START)
        remote = job_dir(exproot, store.path, job.id)
        super().__init__(
            path, remote, experiment, state, redirect_stdout=True, redirect_stderr=True, stop=stop
        )
        self.store = store
        self.job = job
        self.exproot = exproot
        self.heartbeat_interval = heartbeat_interval

    def setup(self) -> None:
        try:
            super().setup()
        except SyncError as error:
            raise ExprootUnreachable(str(error)) from None
        self._record(row_state(self.state), workdir=self.path, exproot=self.exproot)

    def save(self) -> None:
        state = row_state(self.state)
        super().save()
        self._record(state)

    def save_final(self) -> None:
        """Push the files only: the runner then writes the state and the outcome to the row
        in one UPDATE (`JobStore.finish`)."""
        row_state(self.state)
        super().save()

    def _record(self, state: dict[str, Any], **columns: Any) -> None:
        if not self.store.save(self.job, state, **columns):
            self.request_stop()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        beating = threading.Event()
        heart = threading.Thread(
            target=self._beat, args=(beating,), name=f"dbdict-heartbeat-{self.job.id}", daemon=True
        )
        heart.start()
        try:
            with super().running():
                yield
        finally:
            beating.set()
            heart.join()

    def _beat(self, stopped: threading.Event) -> None:
        while not stopped.wait(self.heartbeat_interval):
            try:
                alive = self.store.heartbeat(self.job)
            except StoreError as error:
                log.warning("heartbeat of job %s failed: %s", self.job.id, error)
                continue
            if not alive:
                self.request_stop()
