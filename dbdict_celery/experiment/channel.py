"""Channels: how an experiment talks to whatever runs it.

An experiment is `experiment(state, channel)`. It calls `channel.save()` to
checkpoint its state and `channel.switch()` at safe points; when `switch()`
returns `'stop'` (SIGTERM, SIGINT, a cancel) it should save and return
`channel.INCOMPLETE`, and a later run resumes from the saved state. It calls
`channel.report(step, loss=...)` to add points to its learning curves: they
are kept with the next save, exactly once across preemptions (`reports.py`).

The state carries its bookkeeping under the `dbdict` key, as in the original:
`dbdict.experiment`, `dbdict.status` and, after a failure, `dbdict.error`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, TextIO

from dbdict_celery.errors import JobRefused, UnstorableValue, UsageError
from dbdict_celery.experiment import sync
from dbdict_celery.experiment.metrics_file import MetricsFile
from dbdict_celery.experiment.params import DD, expand, format_d, parse_lines, resolve
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag, stop_signals

Experiment = Callable[[DD, "Channel"], Any]

STOP = "stop"
ORIG_CONF = "orig.conf"
CURRENT_CONF = "current.conf"


def resolve_experiment(name: str) -> Experiment:
    """The experiment function a dotted name designates; a UsageError if it is not callable."""
    function = resolve(name)
    if not callable(function):
        raise UsageError(f"experiment {name!r} is a {type(function).__name__}, not a function")
    return function  # type: ignore[no-any-return]


class Channel:
    """The protocol an experiment sees. Subclasses decide what save and stop mean.

    An experiment that is done returns `channel.COMPLETE` (None: returning
    nothing means done). `channel.INCOMPLETE` (True, as in the original dbdict:
    not "success") means "not done: run me again from my last save", the answer
    to `switch() == 'stop'`. A job that returns INCOMPLETE without being asked
    to stop is sent again later, after a delay that grows while it keeps doing so.
    """

    COMPLETE = None  # done: the job ends DONE
    INCOMPLETE = True  # not done: the job goes back to START, to resume from its last save

    START = Status.START
    RUNNING = Status.RUNNING
    DONE = Status.DONE
    FAILED = Status.FAILED
    CANCELLED = Status.CANCELLED

    def save(self) -> None:
        """Save the experiment's state wherever this channel keeps it."""
        raise NotImplementedError

    def switch(self, message: Any = None) -> str | None:
        """Give control back to the channel; `'stop'` means save and return INCOMPLETE soon."""
        return None

    def report(self, step: int, **values: float) -> None:
        """Add a point at `step` (an integer, 0 or more) to each named curve, for example
        `channel.report(epoch, loss=0.31, acc=0.92)`. Cheap: kept in memory, and written
        with the next `save()` (or the end of the run), in the same write as the state.
        A step at or below one already reported for a key replaces that curve from there."""
        raise NotImplementedError

    def __call__(self, message: Any = None) -> str | None:
        return self.switch(message)

    def save_and_switch(self) -> str | None:
        """Save, then switch; returns what `switch()` returns (`'stop'` or None)."""
        self.save()
        return self.switch()


class SingleChannel(Channel):
    """Runs one experiment in this process; SIGTERM and SIGINT become `'stop'`.

    A stop request is sticky: once asked to stop, every later `switch()` says
    `'stop'`, so an experiment cannot miss it by calling `switch()` twice. A
    channel runs its experiment once; `stop` may be a flag its runner already
    listens to (a Celery task does, from before it books the job).
    """

    def __init__(self, experiment: Experiment, state: DD, stop: StopFlag | None = None) -> None:
        self.experiment = experiment
        self.state = DD(state)
        self.stop = stop or StopFlag()
        self.reports = Reports()  # what the experiment reported since its last save

    def switch(self, message: Any = None) -> str | None:
        return STOP if self.stop.requested else None

    def report(self, step: int, **values: float) -> None:
        self.reports.add(step, values)

    @property
    def stop_requested(self) -> bool:
        """Whether the experiment has been asked to stop during this run."""
        return self.stop.requested

    def request_stop(self, reason: str | None = None) -> None:
        """Ask the experiment to stop at its next `switch()`, for `reason`; safe from a
        signal handler and from any thread."""
        self.stop.set(reason)

    def setup(self) -> None:
        """Prepare the state before the run (load a checkpoint, fetch files)."""

    def save(self) -> None:
        """A single channel keeps its state only in memory."""

    def run(self, force: bool = False) -> Any:
        """Run the experiment once and set `dbdict.status` from its outcome.

        Returns what the experiment returned. An exception is recorded in the
        state (status FAILED, `dbdict.error` holds the traceback), saved, and
        re-raised to the caller. SIGTERM and SIGINT are stop requests from the
        first moment (while files are fetched too): a stop before the
        experiment starts saves and returns INCOMPLETE without running it.
        """
        with stop_signals(self.stop):
            return self._run(force)

    def _run(self, force: bool) -> Any:
        self.setup()
        book = self.state.setdefault("dbdict", DD())
        status = book.get("status", self.START)
        if status in (self.DONE, self.RUNNING) and not force:
            word = "DONE" if status == self.DONE else "RUNNING"
            raise JobRefused(f"this job is already {word}; use --force to run it anyway")
        book.pop("error", None)
        if self.stop.requested:  # asked to stop before the experiment could start
            book.status = self.START
            self.save_final()
            return self.INCOMPLETE
        book.status = self.RUNNING
        with self.running():
            try:
                outcome = self.experiment(self.state, self)
            except BaseException:
                self.state.dbdict.status = self.FAILED
                self.state.dbdict.error = traceback.format_exc()
                self.save_final()
                raise
            self.state.dbdict.status = self.START if outcome is self.INCOMPLETE else self.DONE
            self.save_final()
        return outcome

    def save_final(self) -> None:
        """The save that ends a run, once `dbdict.status` says how it ended: a plain save here.

        A channel whose runner records the outcome itself may save less (the DB
        channel leaves the row to the runner, which writes state and status at once).
        """
        self.save()

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The context the experiment runs in (the stop signals are already handled)."""
        yield


class StandardChannel(SingleChannel):
    """Runs an experiment inside its own working directory, checkpointing to files.

    `orig.conf` keeps the parameters it started with, `current.conf` the state
    at the last save, `metrics.jsonl` the curves reported up to it; a run finding
    `current.conf` resumes from it.
    """

    def __init__(
        self,
        path: str,
        experiment: Experiment,
        state: DD,
        redirect_stdout: bool = False,
        redirect_stderr: bool = False,
        stop: StopFlag | None = None,
    ) -> None:
        super().__init__(experiment, state, stop)
        self.path = os.path.realpath(path)
        self.redirect_stdout = redirect_stdout
        self.redirect_stderr = redirect_stderr

    def setup(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        orig = os.path.join(self.path, ORIG_CONF)
        if not os.path.isfile(orig):
            _write_conf(orig, self.state)
        current = os.path.join(self.path, CURRENT_CONF)
        if os.path.isfile(current):
            with open(current, encoding="utf-8") as lines:
                self.state = expand(parse_lines(lines))
        self.metrics = MetricsFile(self.path)

    def save(self) -> None:
        self.store_files(self.reports.take())

    def store_files(self, reports: Reports) -> None:
        """Keep a save in the working directory: the curves first, then the state (so a kill
        in between leaves the curves ahead of the state, and the resumed run rewrites them)."""
        self.metrics.write(reports)
        _write_conf(os.path.join(self.path, CURRENT_CONF), self.state)

    def save_final(self) -> None:
        """A plain save; when the state cannot be written, `current.conf` still records that
        the run FAILED and why (with the last state that could be written), so that the next
        run is not refused as RUNNING."""
        try:
            self.save()
        except UnstorableValue as error:
            self._record_failure(str(error))
            raise

    def _record_failure(self, reason: str) -> None:
        saved = os.path.join(self.path, CURRENT_CONF)
        if not os.path.isfile(saved):
            saved = os.path.join(self.path, ORIG_CONF)
        with open(saved, encoding="utf-8") as lines:
            state = expand(parse_lines(lines))
        book = state.setdefault("dbdict", DD())
        book.status = self.FAILED
        book.error = "\n".join(filter(None, [self.state.dbdict.get("error"), reason]))
        _write_conf(os.path.join(self.path, CURRENT_CONF), state)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            stack.enter_context(_working_directory(self.path))
            if self.redirect_stdout:
                stack.enter_context(contextlib.redirect_stdout(self._open_log(stack, "stdout")))
            if self.redirect_stderr:
                stack.enter_context(contextlib.redirect_stderr(self._open_log(stack, "stderr")))
            stack.enter_context(super().running())
            yield

    def _open_log(self, stack: contextlib.ExitStack, name: str) -> TextIO:
        sys.stdout.flush()
        sys.stderr.flush()
        path = os.path.join(self.path, name)
        return stack.enter_context(open(path, "a", buffering=1, encoding="utf-8"))


class RSyncChannel(StandardChannel):
    """A StandardChannel whose working directory is mirrored to a remote exproot.

    Setup pulls the remote copy (so a job resumes on any machine), every save
    pushes the working directory back.
    """

    def __init__(
        self,
        path: str,
        remote: str | sync.Remote,
        experiment: Experiment,
        state: DD,
        redirect_stdout: bool = False,
        redirect_stderr: bool = False,
        stop: StopFlag | None = None,
    ) -> None:
        super().__init__(path, experiment, state, redirect_stdout, redirect_stderr, stop)
        self.remote = remote if isinstance(remote, sync.Remote) else sync.Remote.parse(remote)

    def setup(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        sync.ensure_dir(self.remote)
        sync.pull(self.remote, self.path)
        super().setup()

    def store_files(self, reports: Reports) -> None:
        super().store_files(reports)
        self.push()

    def push(self) -> None:
        """Copy the working directory to the remote (over ssh, within `push_deadline`)."""
        sync.push(self.path, self.remote, self.push_deadline())

    def push_deadline(self) -> sync.Deadline | None:
        """When a push must be over by (None: whenever it ends)."""
        return None


@contextlib.contextmanager
def _working_directory(path: str) -> Iterator[None]:
    """`contextlib.chdir` for Python 3.10: run in `path`, come back afterwards."""
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _write_conf(path: str, state: DD) -> None:
    """Write a conf file atomically, so a kill mid-write never leaves half a state."""
    partial = f"{path}.partial"
    with open(partial, "w", encoding="utf-8") as conf:
        conf.write(format_d(state) + "\n")
    os.replace(partial, path)
