"""`optimize(...)`: a study driven in the background of this process, and a handle on it."""

from __future__ import annotations

import threading
from collections.abc import Sequence

from dbdict_celery.experiment.channel import resolve_experiment
from dbdict_celery.experiment.runner import importing_from_cwd
from dbdict_celery.search.definition import Definition
from dbdict_celery.search.driver import Driver, Progress
from dbdict_celery.search.results import StudyStatus, study_status
from dbdict_celery.store.job import Job
from dbdict_celery.store.store import JobStore


class Optimization:
    """A study being driven by a thread of this process. The table is its record: `status()`
    and `best()` read it, and another process can read it as well (`dbdict optimize
    --status NAME`)."""

    def __init__(self, driver: Driver) -> None:
        self.driver = driver
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

    def finished(self, timeout: float = 0.0) -> bool:
        """Whether the driver is done (the study complete, stopped, or failed), waiting up to
        `timeout` seconds for it."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> Progress:
        """Wait until the study is complete; its driver's error, if it failed, is raised
        here. TimeoutError if it is still going after `timeout` seconds."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"study {self.name!r} is still going after {timeout} s")
        if self._error is not None:
            raise self._error
        assert self._progress is not None
        return self._progress

    def stop(self) -> None:
        """Stop driving (the trials in flight run on; `optimize` again picks them up)."""
        self._stop.set()
        self._thread.join()

    def _drive(self) -> None:
        try:
            self._progress = self.driver.run(self._stop)
        except BaseException as error:  # handed to wait()
            self._error = error


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
) -> Optimization:
    """Start driving a study of `experiment` over the search space `params` (`schedule`'s
    syntax: the sweep calls are searched, the other values fixed), each trial a job of
    `store`'s table, at most `parallel` in flight, until `trials` trials have ended.

    Run it again with the same arguments (or the same `study`) and it continues the study
    from the table."""
    with importing_from_cwd():  # as `schedule` checks it: importable here and now
        resolve_experiment(experiment)
    definition = Definition(
        experiment, tuple(params), objective, trials, sampler, pruner, prune_on, seed,
        tuple(enqueue), study or "",
    )  # fmt: skip
    driver = Driver(store, definition, priority, exproot, queue, parallel)
    return Optimization(driver)
