"""The supervisor: the process that booked a job watches it run in an experiment process.

The pool process keeps everything a run owes its row, whatever the experiment
does: it beats for the run, makes the run's writes (`run_messages.py`), and
passes every stop request on at once (a revoke, a worker's shutdown, a cancel
its heartbeat found, a signal to the experiment process itself). An experiment
that has not returned `DBDICT_GRACE` seconds after a stop is killed with every
process it started, and its job goes back to START (CANCELLED after a cancel)
from its last save, its attempt ending "killed after the grace period". An
experiment process that dies (SIGKILL, the out-of-memory killer, `os._exit`) is
seen the moment it ends, not a heartbeat later: its job goes back from its last
save, or ends FAILED once its deaths reach LOST_RUNS. A supervisor whose
worker died (its parent changed) kills the job's processes and gives the job
back before it goes too.

The supervisor also holds the run to its job's limits (`limits.py`): at its time limit
the run is asked to stop as by any stop request (killed after the grace period if it does
not), and a run whose processes hold more memory than its limit is killed at once, its
job FAILED.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator
from multiprocessing.connection import wait
from typing import Any

from celery.signals import worker_process_init, worker_process_shutdown

from dbdict_celery.config import LOST_RUNS, grace_period
from dbdict_celery.errors import (
    DbdictError,
    ExperimentUnavailable,
    ExprootUnreachable,
    NotRunnableHere,
    StoreError,
)
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import RESTART_PRIORITY
from dbdict_celery.store.limits import Limits
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.experiment_process import ExperimentProcess, describe
from dbdict_celery.worker.lease import Lease
from dbdict_celery.worker.outcome import Outcome
from dbdict_celery.worker.process_tree import memory_held
from dbdict_celery.worker.run_messages import REQUESTS, answer, job_message, receive, send

log = logging.getLogger(__name__)

POLL = 0.1  # seconds between two looks at the stop flag, the grace period and the parent
MEMORY_LOOK = 0.2  # seconds between two measures of a run's memory, if its job limits it
RETIRE_WAIT = 10.0  # seconds an experiment process that retires gets to exit by itself
NOT_RUNNABLE = {kind.__name__: kind for kind in (ExprootUnreachable, ExperimentUnavailable)}

_process: ExperimentProcess | None = None
_pool_parent: list[int] = []  # a Celery pool process's parent: the worker it serves


@worker_process_init.connect
def _watch_the_worker(**_: Any) -> None:
    """In a prefork pool process, note the worker: if it dies, so must the jobs here."""
    _pool_parent[:] = [os.getppid()]


def supervise(
    store: JobStore,
    booking: Booking,
    workdir: str,
    root: str,
    interval: float,
    lease: Lease,
    stop: StopFlag | None,
) -> Outcome:
    """Run a booked job in this process's experiment process and watch it to its end."""
    message = job_message(booking, store.path, workdir, root)
    # its memory is measured from a process that holds no earlier job's
    fresh = Limits.from_record(booking.job.limits).memory is not None
    while True:
        process = _experiment_process(fresh)
        fresh = False
        process.block.reset(lease.held_until, lease.length)
        watch = _Watch(process, store, booking, interval)
        try:
            with _relayed(stop, process.block.stop):
                send(process.connection, message)
                process.jobs_run += 1
                outcome = watch.until_done()
        except NotRunnableHere:  # given back by the experiment process, which goes on
            raise
        except BaseException:  # its run is not watched any more: it must not go on
            watch.lose("its supervisor failed while running it")
            raise
        if outcome is not None:
            return outcome  # else its code had changed: a fresh process runs the job


@contextlib.contextmanager
def _relayed(stop: StopFlag | None, shared: StopFlag) -> Iterator[None]:
    """While inside, a stop this process hears (a signal, already heard or not) reaches the
    experiment at once, through the memory they share."""
    if stop is None:
        yield
        return
    stop.relay = shared
    if stop.requested:
        shared.set(stop.reason)
    try:
        yield
    finally:
        stop.relay = None


def _experiment_process(fresh: bool = False) -> ExperimentProcess:
    """This process's experiment process, started anew if it has none that still runs (or,
    `fresh`, if it ran a job already)."""
    global _process
    if fresh and _process is not None and _process.jobs_run:
        close_experiment_process()
    if _process is not None and _process.has_ended():
        _process.kill()  # reaps whatever it left
        _process = None
    if _process is None:
        _process = ExperimentProcess()
    return _process


def close_experiment_process() -> None:
    """End this process's experiment process, if it has one (the next job starts another).
    It inherited this process's settings and modules when it was forked: a process whose
    settings changed since (a test, a notebook) closes it to run the next job afresh."""
    if _process is not None:
        _process.connection.close()  # it ends when it reads the end of its socket
        _let_go(_process, kill=False)


@worker_process_shutdown.connect
def _close_at_shutdown(**_: Any) -> None:
    close_experiment_process()


def _let_go(process: ExperimentProcess, *, kill: bool) -> None:
    """Drop this process's experiment process: killed, or left to exit by itself first."""
    global _process
    _process = None
    if not kill:
        process.wait(RETIRE_WAIT)
    process.kill()  # and what it left behind: the orphans handed to this process


class _Watch:
    """One job's run, watched from its supervisor."""

    def __init__(
        self,
        process: ExperimentProcess,
        store: JobStore,
        booking: Booking,
        interval: float,
    ) -> None:
        self.process = process
        self.store = store
        self.job = booking.job
        self.interval = interval
        self.next_beat = booking.sent + interval
        self.stopping_since: float | None = None
        self.grace = grace_period()
        self.limits = Limits.from_record(booking.job.limits)
        started = time.monotonic()
        self.deadline = None if self.limits.time_limit is None else started + self.limits.time_limit
        self.next_memory_look = started
        self.saved = False  # whether the run has saved (a time limit's requeue needs a save)

    def until_done(self) -> Outcome | None:
        """The run's outcome; None if the experiment process retired before the job (its
        code changed) and the job is to be sent to a fresh one. A NotRunnableHere error if
        the job could not start here."""
        process = self.process
        while True:
            ready = wait(process.sentinels(), timeout=self._timeout())
            if process.connection in ready:
                said = receive(process.connection)
                if said is None:  # its end of the socket closed: it died
                    process.wait(RETIRE_WAIT)
                    return self._died()
                if said["op"] not in REQUESTS:
                    return self._ended(said)
                self.saved |= said["op"] == "save"
                if not send(process.connection, answer(self.store, self.job, said)):
                    continue  # it died asking: its socket's end tells so next
            elif ready and process.has_ended():  # what it said last is read first
                return self._died()
            outcome = self._look_around()  # after every wake: an experiment may save non-stop
            if outcome is not None:
                return outcome

    def _timeout(self) -> float:
        return max(0.0, min(POLL, self.next_beat - time.monotonic()))

    def _ended(self, said: dict[str, Any]) -> Outcome | None:
        """What the experiment process said last: its outcome is recorded first, then it is
        let go if it retires."""
        outcome = None
        if said["op"] == "ended":
            finish = said["finish"]
            recorded = answer(self.store, self.job, finish) if finish else {}
            status = None if recorded.get("status") is None else Status(recorded["status"])
            raised = tuple(said.get("raised", ()))
            outcome = Outcome(status, said["stopped"], said["voluntary"], raised=raised)
        if said.get("retire"):
            _let_go(self.process, kill=False)
        if said["op"] == "stale":
            log.info("job %s: %s changed since its process started: a fresh process runs it",
                     self.job.id, said["file"])  # fmt: skip
        elif said["op"] == "not runnable":
            raise NOT_RUNNABLE.get(said["kind"], NotRunnableHere)(said["message"])
        return outcome

    def _look_around(self) -> Outcome | None:
        """Beat when due, kill after the grace period, notice the worker gone; an outcome
        when the run is over."""
        now = time.monotonic()
        stop = self.process.block.stop
        if self.deadline is not None and now >= self.deadline and not stop.requested:
            log.warning("job %s reached its time limit: asking it to stop", self.job.id)
            stop.set(StopReason.TIME_LIMIT)
        if stop.requested and self.stopping_since is None:
            self.stopping_since = now
        if self.stopping_since is not None and now >= self.stopping_since + self.grace:
            if self.process.connection.poll():  # its last word came in time after all
                return None
            return self._kill_after_grace()
        if now >= self.next_beat:
            self._beat(now)
        if self.limits.memory is not None and now >= self.next_memory_look:
            self.next_memory_look = now + MEMORY_LOOK
            held = memory_held(self.process.pid)
            if held > self.limits.memory and not self.process.connection.poll():
                return self._kill_out_of_memory(held)  # (its last word first, if it said it)
        if _pool_parent and os.getppid() != _pool_parent[0]:
            return self.lose("its worker died while running it")
        return None

    def _beat(self, sent: float) -> None:
        self.next_beat = sent + self.interval
        try:
            standing = self.store.heartbeat(self.job)
        except StoreError as error:
            log.warning("heartbeat of job %s failed: %s", self.job.id, error)
            return
        block = self.process.block
        block.lease.note(standing, sent, block.stop)

    def _kill_after_grace(self) -> Outcome:
        log.warning("job %s did not stop within %.0f s: killing it", self.job.id, self.grace)
        timed_out = self.process.block.stop.reason == StopReason.TIME_LIMIT
        _let_go(self.process, kill=True)
        if not timed_out:  # a preemption: back from its last save
            return self._end(Status.START, StopReason.KILLED)
        ended, error = self.limits.at_time_limit(killed=True, saved=self.saved)
        return self._end(ended, StopReason.TIME_LIMIT, None if ended is Status.START else error)

    def _end(
        self, ended: Status, reason: str, error: str | None = None, stopped: bool = True
    ) -> Outcome:
        """Record the end of a run this supervisor killed: its job FAILED, or back to START
        from its last save."""
        priority = RESTART_PRIORITY if ended is Status.START else None
        status = self._record(
            lambda: self.store.finish(
                self.job, ended, priority=priority, reason=reason, error=error
            )
        )
        return Outcome(status, stopped=stopped)

    def _kill_out_of_memory(self, held: int) -> Outcome:
        """Kill a run whose processes hold more memory than its job allows: its job ends
        FAILED (a limit reached is no lost run: it would reach it again)."""
        error = self.limits.out_of_memory(held)
        log.error("job %s: %s: killing it", self.job.id, error)
        _let_go(self.process, kill=True)
        return self._end(Status.FAILED, StopReason.OUT_OF_MEMORY, error, stopped=False)

    def _died(self) -> Outcome:
        how = describe(self.process.wait_status)
        return self.lose(f"its process died ({how}) while running it (host {self.job.host})")

    def lose(self, reason: str) -> Outcome:
        """The run is lost (its process died, its worker died, its supervisor failed): kill
        what is left of it and put the job back from its last save, a death counted."""
        _let_go(self.process, kill=True)
        log.warning("job %s: %s", self.job.id, reason)
        status = self._record(lambda: self.store.release_dead(self.job, LOST_RUNS, reason))
        return Outcome(status, stopped=self.process.block.stop.requested, died=True)

    def _record(self, write: Any) -> Status | None:
        try:
            status: Status | None = write()
        except DbdictError as error:  # reconcile puts it back once its heartbeat is stale
            log.error("job %s: how its run ended was not recorded: %s", self.job.id, error)
            return None
        return status
