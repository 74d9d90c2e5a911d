"""The DB channel: an RSyncChannel whose saves also land in the job's row.

This is the original's DBRSyncChannel. The working directory is pulled from
`EXPROOT/dbname/tablename/ID` and pushed back on every save; every save also
writes the flattened state to the row; the process's heart (`heart.py`) keeps
the row's `heartbeat_at` fresh even when the experiment never saves. When the table
says the job is no longer this run's (cancelled, or taken over after being
declared dead), the experiment is asked to stop.

A run touches the job's files only while it holds the job: each save writes
the row first and pushes only if that write landed, and any push comes within
a lease (half of DBDICT_STALE_AFTER) of the run's last landed write (the
booking is the first, counted from when it was sent), or after a fresh
heartbeat lands. Reconcile declares a run dead only after a whole
DBDICT_STALE_AFTER of silence, so a run cut off from the database (its writes
hang, then are refused) never pushes over the files of the run that took over.

The experiment finds its run in `state.dbdict`: `id` (the row), `run_id` (this run,
fresh at each booking) and `attempt` (1 for the first run). With the code it
runs known (capture on), setup writes the attempt's record among the job's
files (`attempt_record.py`): straight into a local exproot, else into the
working directory, pushed with the rest.

The curves the experiment reports (`channel.report`) ride in the save that
follows them, fenced like the state: a run that lost its job writes none.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Any

from dbdict_celery.errors import ExprootUnreachable, StoreError, SyncError
from dbdict_celery.experiment.channel import Experiment, RSyncChannel
from dbdict_celery.experiment.params import DD, expand, flatten
from dbdict_celery.experiment.provenance import Code
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.experiment.sync import Deadline, LeaseExpired
from dbdict_celery.store.job import Standing, job_dir
from dbdict_celery.store.values import encode
from dbdict_celery.worker.attempt_record import write_record
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.heart import HEART
from dbdict_celery.worker.lease import Lease
from dbdict_celery.worker.run_messages import RunWrites

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
        writes: RunWrites,
        booking: Booking,
        path: str,
        exproot: str,
        experiment: Experiment,
        heartbeat_interval: float | None,
        stop: StopFlag | None = None,
        *,
        lease: Lease,
        code: Code | None = None,
    ) -> None:
        job = booking.job
        state = expand(job.state)
        state[BOOKKEEPING] = DD(experiment=job.experiment, status=self.START)
        remote = job_dir(exproot, writes.path, job.id)
        super().__init__(
            path, remote, experiment, state, redirect_stdout=True, redirect_stderr=True, stop=stop
        )
        self.writes = writes
        self.booking = booking
        self.job = job
        self.heartbeat_interval = heartbeat_interval  # None: the supervisor beats for the run
        self.lease = lease
        # the row learns the exproot of a job scheduled without one from the run's first
        # landed save (or its outcome): a run given back before then leaves it unset; the
        # attempt learns its code the same way (it was opened before the code was known)
        self.unrecorded_exproot: str | None = None if job.exproot else exproot
        self.code = code
        self.unrecorded_code = code
        self.saves = 0  # landed saves of this run

    def setup(self) -> None:
        try:
            super().setup()
        except SyncError as error:
            raise ExprootUnreachable(str(error)) from None
        book = self.state.setdefault(BOOKKEEPING, DD())  # current.conf has an earlier run's
        book.update(id=self.job.id, run_id=self.job.run_id, attempt=self.job.attempts)
        if self.code is not None:  # written where the files are kept if that is here: no copy
            folder = self.path if self.remote.host else self.remote.path
            write_record(folder, self.writes.path, self.booking, self.code)

    def save(self) -> None:
        """The row and the curves reported since the last save first, in one write, then
        current.conf and the files (pushed only if the row took it)."""
        state = row_state(self.state)
        reports = self.reports.take()
        self._record(state, reports)
        self.store_files(reports)

    def save_final(self) -> None:
        """Push the files; the runner then writes the state and the outcome to the row in one
        write (`JobStore.finish`). Points reported since the last save reach the row first,
        by a save: the files say the run is over, and a run resumed from them (its outcome
        lost with its process) would not report them again."""
        if self.reports:
            self.save()
            return
        row_state(self.state)
        self.store_files(self.reports)

    def push(self) -> None:
        """Push the files while this run holds the job; a run that lost it pushes nothing.

        The push must end within the lease (renewed first if half of it is gone; the
        heart renews it as the push goes on): a push the network holds up past it is
        stopped, and tried again only once a heartbeat has renewed the lease."""
        if (
            not self.lease.lost
            and time.monotonic() >= self.lease.held_until - self.lease.length / 2
        ):
            self._heartbeat()
        for last_try in (False, True):
            if self.lease.lost:
                log.warning("job %s is no longer this run's: its files are not pushed",
                            self.job.id)  # fmt: skip
                return
            try:
                super().push()
                return
            except LeaseExpired:
                if last_try:
                    raise
                self._heartbeat()

    def push_deadline(self) -> Deadline:
        """The end of the run's lease on the files, as it stands when asked."""
        return lambda: self.lease.held_until

    def _record(self, state: dict[str, Any], reports: Reports) -> None:
        sent = time.monotonic()
        standing = self.writes.save(
            self.job, state, exproot=self.unrecorded_exproot, code=self.unrecorded_code,
            reports=reports,
        )  # fmt: skip
        if standing is not Standing.LOST:
            self.unrecorded_exproot = None
            self.unrecorded_code = None
            self.saves += 1
        self.lease.note(standing, sent, self.stop)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            if self.heartbeat_interval is not None:
                stack.enter_context(HEART.beating(self._beat, self.heartbeat_interval))
            stack.enter_context(super().running())
            yield

    def _beat(self) -> None:
        """The heart's call: a heartbeat that fails is only logged (the next one may land)."""
        try:
            self._heartbeat()
        except StoreError as error:
            log.warning("heartbeat of job %s failed: %s", self.job.id, error)

    def _heartbeat(self) -> None:
        sent = time.monotonic()  # the lease counts from before the write, never after
        self.lease.note(self.writes.heartbeat(self.job), sent, self.stop)
