"""Stop requests: a flag that SIGTERM, SIGINT and the signals DBDICT_STOP_SIGNALS names
set, shared by whoever runs a job.

A runner (a Celery task booking a row, a channel fetching files, the
experiment itself) may be stopped at any moment. One flag, installed as the
signal handler from the first moment of a run to its last, means a stop
that arrives while files are still being fetched is a stop like any other,
never a crash.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

from dbdict_celery.config import stop_signals as configured_stop_signals
from dbdict_celery.errors import UsageError

ALWAYS = (signal.SIGTERM, signal.SIGINT)


def handled_signals() -> tuple[signal.Signals, ...]:
    """The signals that ask a run to stop: SIGTERM, SIGINT, and those DBDICT_STOP_SIGNALS
    names (a malformed value, refused when a worker starts, adds none)."""
    try:
        return tuple(dict.fromkeys((*ALWAYS, *configured_stop_signals())))
    except UsageError:
        return ALWAYS


class StopFlag:
    """Whether a run has been asked to stop, and the first reason it was given (a signal's
    name, or what the runner says: the run's attempt records it).

    Plain attributes, not a threading.Event: it is set from signal handlers,
    which must never wait on a lock the interrupted code may hold (Event.set takes one).
    """

    def __init__(self) -> None:
        self.requested = False
        self.reason: str | None = None
        self.relay: StopFlag | None = None  # a flag that hears every stop this one hears

    def set(self, reason: str | None = None) -> None:
        """Ask the run to stop (and the flag it relays to); safe from a signal handler and
        from any thread."""
        if not self.requested:
            self.reason = reason
        self.requested = True
        relay = self.relay
        if relay is not None:
            relay.set(self.reason)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)


# what each active stop_signals replaced, outermost first
_replaced: list[dict[signal.Signals, Any]] = []


def _held() -> set[signal.Signals]:
    """The signals the active stop_signals handle."""
    return {signum for replaced in _replaced for signum in replaced}


def _hold_before_fork() -> None:
    """Hold the stop signals while a process forks, so that one sent to the child before it
    has its own handlers back stays pending, to end it then, rather than reach the handler
    it inherited and be lost."""
    if _replaced:
        signal.pthread_sigmask(signal.SIG_BLOCK, _held())


def _release_in_parent() -> None:
    if _replaced:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _held())


def _restore_in_child() -> None:
    """In a process forked while stop signals are handled (a `multiprocessing` worker of the
    experiment), the handlers from before: the child's signals are its own, to end it as
    they would anywhere (a Pool's terminate() must kill its workers, not set a flag)."""
    if _replaced:
        held = _held()
        for signum, handler in _replaced[0].items():
            signal.signal(signum, handler)
        _replaced.clear()
        signal.pthread_sigmask(signal.SIG_UNBLOCK, held)


os.register_at_fork(
    before=_hold_before_fork, after_in_parent=_release_in_parent, after_in_child=_restore_in_child
)


@contextlib.contextmanager
def stop_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """While inside, the stop signals (`handled_signals`) set `flag` (and do nothing else);
    the previous handlers come back afterwards, and a process forked meanwhile starts with
    them.
    Outside the main thread, signals cannot be handled: it only yields."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {signum: signal.getsignal(signum) for signum in handled_signals()}
    owner = os.getpid()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # forked before the handlers were restored in it
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        flag._on_signal(signum, frame)

    _replaced.append(previous)
    for signum in previous:
        signal.signal(signum, on_signal)
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if _replaced:
            _replaced.pop()
