"""The optimize driver: keeps a study's trials running as jobs of the table, and keeps no
state of its own.

At start it rebuilds an in-memory Optuna study from the table: earlier DONE jobs of the
same experiment in the search space first (a warm start), then the study's trials in
order, finished ones told (DONE as their objective, FAILED as failed, PRUNED as pruned
with their reported curve), the ones still in flight asked again with their own
parameters so that the sampler counts them. Then, at each look at the trials in flight
(soon after one that saw a trial end or added one, then less and less often, down to
every `POLL` seconds), it tells Optuna what ended, feeds the pruner the points the running
trials reported, asks it to stop the ones that fall behind (a prune request: the run
stops at its next save and ends PRUNED), and asks the sampler for new trials while
fewer than `parallel` are in flight and fewer than `trials` exist. Each new trial is a
row (its study and number are its identity: two drivers cannot both add trial N) and a
message. Killed at any moment, the driver run again picks up from the table: a trial
inserted but not sent is sent again (a duplicate message runs nothing twice).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum

import optuna
from optuna.trial import create_trial

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.search.definition import CURVE_PRUNERS, Definition
from dbdict_celery.search.objective import MissingObjective, Objective
from dbdict_celery.search.trials import ended_state, ended_trial
from dbdict_celery.store.job import Job, NewJob
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.enqueue import Ring, enqueue

log = logging.getLogger(__name__)

POLL = 0.5  # the most seconds between two looks at the trials in flight
QUICK = 0.02  # the fewest: after a look that saw a trial end, or added one
IN_FLIGHT = (Status.START, Status.RUNNING)


class StudyTaken(UsageError):
    """Another study, or another driver of this one, is in the way."""


@dataclass
class Progress:
    """What the driver did, for its caller to show."""

    warm_started: int = 0  # earlier DONE jobs told to the sampler first
    resumed: int = 0  # trials found in the table at start
    asked: list[int] = field(default_factory=list)  # job ids of the trials it added
    pruned: list[int] = field(default_factory=list)  # job ids it asked to stop


class Look(Enum):
    """What one look at the table found."""

    COMPLETE = "complete"  # the study has all its trials, and none in flight
    MOVED = "moved"  # a trial ended, or one was added: another look soon
    QUIET = "quiet"  # nothing ended: the next look may wait longer


class Driver:
    """Drives one study over one job table; `run()` returns when the study is complete."""

    def __init__(self, store: JobStore, definition: Definition) -> None:
        recorded = store.study_definition(definition.name)
        earlier = Definition.from_record(recorded) if recorded is not None else None
        definition = definition.seeded(earlier)
        if earlier is not None and (differing := definition.differs_from(earlier)):
            raise StudyTaken(
                f"study {definition.name!r} is already in this table with another "
                f"{', '.join(differing)}: give another --study name"
            )
        if recorded != definition.record():  # a look of a detached study changes nothing
            store.define_study(definition.name, definition.record())
        self.store = store
        self.definition = definition
        self.progress = Progress()
        self._live: dict[int, optuna.trial.Trial] = {}  # job id -> its trial, while in flight
        self._last_step: dict[int, int] = {}  # job id -> the last step told to its trial
        self._count = 0  # the study's trials in the table
        self._study = self._rebuild()

    def run(
        self, stop: threading.Event | None = None, tick: Callable[[Driver], None] | None = None
    ) -> Progress:
        """Drive the study until it has `trials` trials and none in flight, or `stop` is set
        (the trials in flight run on; the command run again picks them up)."""
        stop = stop or threading.Event()
        pause = QUICK
        while (look := self.step()) is not Look.COMPLETE:
            if tick is not None:
                tick(self)
            pause = QUICK if look is Look.MOVED else min(2 * pause, POLL)
            if stop.wait(pause):
                break
        return self.progress

    def step(self) -> Look:
        """One look at the trials in flight: tell, prune, ask."""
        followed = self.store.trials(self.definition.name, among=list(self._live))
        watched = [job for job in followed if job.status is Status.RUNNING]
        curves = self._curves(watched if self.definition.pruner != "none" else [])
        ended = 0
        for job in followed:
            ended += self._follow(job, curves.get(job.id, {}))
        in_flight = self.store.count_trials(self.definition.name, IN_FLIGHT)  # a revived one too
        new = self._ask(self.definition.parallel - in_flight)
        if self._count < self.definition.trials or in_flight + len(new) > 0:
            return Look.MOVED if ended or new else Look.QUIET
        return Look.COMPLETE

    def detach(self, detached: bool) -> None:
        """Record whether the workers' beat task drives the study (`--detach`), or a command."""
        self.definition = dataclasses.replace(self.definition, detached=detached)
        self.store.define_study(self.definition.name, self.definition.record())

    @property
    def ended(self) -> int:
        """How many of the study's trials have ended, as told so far."""
        finished = [trial for trial in self._study.get_trials(deepcopy=False)
                    if trial.state.is_finished()]  # fmt: skip
        return len(finished) - self.progress.warm_started

    @property
    def study(self) -> optuna.Study:
        """The in-memory Optuna study, as told so far."""
        return self._study

    # -- rebuilding the study from the table ---------------------------------------------

    def _rebuild(self) -> optuna.Study:
        trials = self.store.trials(self.definition.name)
        study = self.definition.study(told=len(trials))
        self._study = study
        self.progress.warm_started = self._warm_start(study)
        curves = self._curves([job for job in trials if self._needs_curve(job)])
        for job in trials:
            self._adopt(study, job, curves.get(job.id, {}))
        if self.definition.pruner in CURVE_PRUNERS:  # once every trial is in: it compares
            for job in trials:
                if job.id in self._live:
                    self._judge(job)
        self.progress.resumed = self._count = len(trials)
        asked = [self.definition.space.suggested(job.params) for job in trials]
        for configuration in self.definition.configurations:
            if configuration not in asked:
                study.enqueue_trial(configuration)
        return study

    def _needs_curve(self, job: Job) -> bool:
        """Whether a trial of the table enters the rebuilt study with its curve: a pruned one
        (its last step), one in flight if a pruner watches it, and an ended one if the
        pruner compares curves (median, percentile); ASHA's and Hyperband's rungs are not
        rebuilt from curves, and would compare a trial's whole curve with them wrongly."""
        pruner = self.definition.pruner
        if job.status is Status.PRUNED:
            return True
        if job.status in IN_FLIGHT:
            return pruner != "none"
        return job.status is not Status.CANCELLED and pruner in CURVE_PRUNERS

    def resend_waiting(self) -> None:
        """Send the study's START trials a message again: a killed driver may have added one
        and not sent it (a copy is harmless: a job is booked once). For a command starting;
        beat's looks leave it to reconcile, which sends what has no message."""
        waiting = [Ring.of(job) for job in self.store.trials(self.definition.name)
                   if job.status is Status.START]  # fmt: skip
        if waiting:
            enqueue(self.store, waiting)

    def _warm_start(self, study: optuna.Study) -> int:
        """Tell the sampler the DONE jobs of this experiment, outside any study, whose
        parameters are a point of the space."""
        space, goal = self.definition.space, self.definition.goal
        told = 0
        for job in self.store.stream(Status.DONE):
            if job.study is not None or job.experiment != self.definition.experiment:
                continue
            suggested = space.suggested(job.params)
            values = _known_values(goal, job)
            if suggested is None or values is None:
                continue
            study.add_trial(
                create_trial(params=suggested, distributions=space.distributions, values=values)
            )
            told += 1
        return told

    def _adopt(self, study: optuna.Study, job: Job, curve: dict[int, float]) -> None:
        """Put one trial of the table into the fresh study, as it stands (`curve`: its
        reported points, if it is pruned or the pruner watches it)."""
        space = self.definition.space
        suggested = space.suggested(job.params)
        if suggested is None or job.experiment != self.definition.experiment:
            raise StudyTaken(
                f"job {job.id}, trial {job.trial} of study {self.definition.name!r}, is not "
                "a point of this search space"
            )
        if job.status in IN_FLIGHT:
            study.enqueue_trial(suggested)
            self._live[job.id] = study.ask(space.distributions)
            self._report(job, curve)
            return
        if job.status is Status.CANCELLED:
            return  # a user's decision, not a result: the sampler is not told
        study.add_trial(ended_trial(self.definition, job, curve or None))

    # -- following the trials in flight ----------------------------------------------------

    def _follow(self, job: Job, curve: dict[int, float]) -> bool:
        """Follow a trial in flight (`curve`: its reported points); whether it ended."""
        trial = self._live[job.id]
        if job.status is Status.RUNNING:
            if self._report(job, curve):
                self._judge(job)
            return False
        if job.status is Status.START:
            return False
        del self._live[job.id]
        values = None
        if job.status is Status.DONE:
            values = self.definition.goal.values(job.id, job.state)
        if values is not None:
            self._study.tell(trial, values)
        else:
            self._study.tell(trial, state=ended_state(job.status))
        return True

    def _judge(self, job: Job) -> None:
        """Ask the pruner about a running trial (its points told); stop it if it says so and
        it was not asked already (the row says)."""
        running = job.status is Status.RUNNING and not job.prune_requested
        if running and self._live[job.id].should_prune():
            self._prune(job)

    def _prune(self, job: Job) -> None:
        self.store.prune([job.id])
        self.progress.pruned.append(job.id)
        log.info("trial %s (job %s) pruned", job.trial, job.id)

    def _report(self, job: Job, curve: dict[int, float]) -> bool:
        """Tell a running trial the points of `curve` it reported since the last look;
        whether any."""
        trial, last = self._live[job.id], self._last_step.get(job.id, -1)
        new = {step: value for step, value in curve.items() if step > last}
        for step, value in sorted(new.items()):
            trial.report(value, step)
        if new:
            self._last_step[job.id] = max(new)
        return bool(new)

    def _curves(self, jobs: list[Job]) -> dict[int, dict[int, float]]:
        """The watched key's points of these jobs, by job and step, in one query."""
        if not jobs:
            return {}
        curves: dict[int, dict[int, float]] = {job.id: {} for job in jobs}
        for point in self.store.metrics([job.id for job in jobs], [self.definition.watched]):
            curves[point.job_id][point.step] = point.value
        return curves

    # -- asking for new trials -----------------------------------------------------------

    def _ask(self, room: int) -> list[int]:
        d = self.definition
        space, name = d.space, d.name
        new: list[int] = []
        rings: list[Ring] = []
        while room > len(new) and self._count < d.trials:
            trial = self._study.ask(space.distributions)
            number = self._count
            planned = NewJob(d.experiment, space.params(trial.params), d.priority, d.exproot,
                             d.queue, name, number, d.limits)  # fmt: skip
            (inserted,) = (row for batch in self.store.insert([planned]) for row in batch)
            if not inserted.created:
                raise StudyTaken(
                    f"trial {number} of study {name!r} was added by another driver: run one "
                    "driver per study"
                )
            self._live[inserted.id] = trial
            self._count += 1
            new.append(inserted.id)
            rings.append(Ring(inserted.id, d.priority, d.queue))
        if rings:
            enqueue(self.store, rings)
            self.progress.asked += new
        return new


def _known_values(goal: Objective, job: Job) -> list[float] | None:
    """A job's objective values, None if its state lacks one (a job of another purpose)."""
    try:
        return goal.values(job.id, job.state)
    except MissingObjective:
        return None
