"""Stop requests: a flag that SIGTERM and SIGINT set, shared by whoever runs a job.

A runner (a Celery task booking a row, a channel fetching files, the
experiment itself) may be stopped at any moment. One flag, installed as the
signal handler from the first moment of a run to its last, means a stop
that arrives while files are still being fetched is a stop like any other,
never a crash.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class StopFlag:
    """Whether a run has been asked to stop, and the first reason it was given (a signal's
    name, or what the runner says: the run's attempt records it).

    Plain attributes, not a threading.Event: it is set from signal handlers,
    which must never wait on a lock the interrupted code may hold (Event.set takes one).
    """

    def __init__(self) -> None:
        self.requested = False
        self.reason: str | None = None

    def set(self, reason: str | None = None) -> None:
        """Ask the run to stop; safe from a signal handler and from any thread."""
        if not self.requested:
            self.reason = reason
        self.requested = True

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.set(signal.Signals(signum).name)


@contextlib.contextmanager
def stop_signals(flag: StopFlag) -> Iterator[StopFlag]:
    """While inside, SIGTERM and SIGINT set `flag` (and do nothing else); the previous
    handlers come back afterwards. Outside the main thread, signals cannot be handled:
    it only yields."""
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    for signum in STOP_SIGNALS:
        signal.signal(signum, flag._on_signal)
    try:
        yield flag
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
