"""A run's lease on its job, and what the run learns from each of its writes.

A run holds its job while its writes land. Each landed write (the booking, a
save, a heartbeat) extends the lease on the job's files to half the staleness
window past the moment it was sent; a write that finds the job no longer the
run's marks the lease lost, after which the run never touches the job's files
again. A write that finds a cancel asked, or the job lost, asks the run to stop.

The supervisor's heartbeats and the experiment process's saves both extend one
lease: the experiment process pushes files within it. `SharedLease` keeps it in
memory both processes see (`run_block.py`).
"""

from __future__ import annotations

from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import Standing


class Lease:
    """Until when (`time.monotonic()`) the run holds its job's files, and whether it lost
    the job."""

    def __init__(self, held_until: float, length: float) -> None:
        self.held_until = held_until
        self.length = length
        self.lost = False

    def note(self, standing: Standing, sent: float, stop: StopFlag) -> None:
        """Learn from a write sent at `sent` (never from when its answer came): a landed one
        extends the lease; one that did not land, or found a cancel asked, stops the run."""
        if standing is Standing.LOST:
            self.lost = True
        else:
            self.held_until = max(self.held_until, sent + self.length)
        if not standing:
            lost = standing is Standing.LOST
            stop.set(StopReason.TAKEN_OVER if lost else StopReason.CANCEL)
