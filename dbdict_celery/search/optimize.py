"""`optimize(...)`: a study driven in the background of this process (or, detached, by the
workers), and a handle on it."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.channel import resolve_experiment
from dbdict_celery.experiment.runner import importing_from_cwd
from dbdict_celery.search.definition import Definition
from dbdict_celery.search.driver import POLL, Driver, Progress, StudyTaken
from dbdict_celery.search.results import StudyStatus, study_status
from dbdict_celery.store.job import Job
from dbdict_celery.store.limits import Limits
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.study_lock import StudyLock

LOCK_WAIT = 30.0  # seconds a driver waits for the study's lock before it gives up


class Optimization:
    """A study being driven by a thread of this process, or by the workers (detached: the
    thread takes its first look only). The table is its record: `status()` and `best()`
    read it, and another process can read it as well (`dbdict optimize --status NAME`)."""

    def __init__(self, driver: Driver, held: contextlib.ExitStack, lock: StudyLock) -> None:
        self.driver = driver
        self._held = held  # the study's driver lock, held until the thread ends
        self._lock = lock
        self.name = driver.definition.name
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._progress: Progress | None = None
        self._thread = threading.Thread(target=self._drive, name=f"optimize {self.name}")
        self._thread.start()

    def status(self) -> StudyStatus:
        """Where the study stands, as the table says."""
        return study_status(self.driver.store, self.name)

    def best(self, count: int = 5) -> list[Job]:
        """Its best trials so far (the Pareto front for several objectives)."""
        return study_status(self.driver.store, self.name, count).best

    def finished(self, timeout: float | None = 0.0) -> bool:
        """Whether the driver is done (the study complete, stopped, or failed), waiting up to
        `timeout` seconds for it."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Progress:
        """Wait until the study is complete (detached: until the table says so); its
        driver's error, if it failed, is raised here. TimeoutError if it is still going
        after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._over():
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"study {self.name!r} is still going after {timeout} s")
            if self._thread.is_alive():
                self._thread.join(POLL)
            else:
                time.sleep(POLL)
        return self.progress()

    def progress(self) -> Progress:
        """What this process's driver did, once it is done (`finished()`); its error, if it
        failed, is raised here."""
        if self._error is not None:
            raise self._error
        assert self._progress is not None, "the driver is still at work"
        return self._progress

    def _over(self) -> bool:
        """Whether there is nothing more to wait for: the driver failed, or the study is
        complete (driven here, it is when the driver is done)."""
        if self._thread.is_alive():
            return False
        detached = self.driver.definition.detached
        return self._error is not None or not detached or self.status().complete

    def stop(self) -> None:
        """Stop driving (the trials in flight run on; `optimize` again picks them up)."""
        self._stop.set()
        self._thread.join()

    def _drive(self) -> None:
        driver = self.driver
        try:
            with self._held:
                driver.resend_waiting()
                if driver.definition.detached:
                    driver.step()  # the first trials: the workers' beat task does the rest
                    self._progress = driver.progress
                else:  # at each look, the lock is kept (or found lost)
                    self._progress = driver.run(self._stop, lambda _: self._lock.keep())
        except BaseException as error:  # handed to wait()
            self._error = error


@contextlib.contextmanager
def _driving(store: JobStore, name: str) -> Iterator[StudyLock]:
    """Hold the driver lock of study `name` while in the block: one driver per study. A
    look of the workers' beat task is short, and waited for; another driver at work is an
    error."""
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        with store.driving(name) as lock:
            if lock is not None:
                yield lock
                return
        if time.monotonic() > deadline:
            raise StudyTaken(
                f"study {name!r} is being driven by another process (another dbdict optimize, "
                "or a look of Celery beat's that has not ended): one driver at a time"
            )
        time.sleep(POLL)


def optimize(
    store: JobStore,
    experiment: str,
    params: Sequence[str],
    objective: str,
    trials: int,
    parallel: int = 1,
    sampler: str = "tpe",
    pruner: str = "none",
    study: str | None = None,
    seed: int | None = None,
    prune_on: str | None = None,
    enqueue: Sequence[str] = (),
    priority: float = 1.0,
    exproot: str | None = None,
    queue: str | None = None,
    detach: bool = False,
    limits: Limits | None = None,
) -> Optimization:
    """Start driving a study of `experiment` over the search space `params` (`schedule`'s
    syntax: the sweep calls are searched, the other values fixed), each trial a job of
    `store`'s table, at most `parallel` in flight, until `trials` trials have ended.

    Run it again with the same arguments (or the same `study`) and it continues the study
    from the table. With `detach`, this process only adds the first trials, and the workers
    drive the study (Celery beat's `drive_studies`, every DBDICT_DRIVE_INTERVAL seconds).
    `limits` apply to each trial, as to the jobs of `schedule`."""
    if limits is not None and limits.max_running is not None:
        raise UsageError("--max-running caps a schedule's jobs: a study's is --parallel")
    with importing_from_cwd():  # as `schedule` checks it: importable here and now
        resolve_experiment(experiment)
    definition = Definition(
        experiment, tuple(params), objective, trials, sampler, pruner, prune_on, seed,
        tuple(enqueue), study or "", parallel, priority, exproot, (limits or Limits()).queue(queue),
        detach, (limits or Limits()).record(),
    )  # fmt: skip
    if detach:
        definition.check_detachable()
    held = contextlib.ExitStack()
    lock = held.enter_context(_driving(store, definition.name))  # before the study is read
    try:
        return Optimization(Driver(store, definition), held, lock)
    except BaseException:
        held.close()
        raise
