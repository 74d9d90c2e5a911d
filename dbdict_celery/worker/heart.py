"""The heart: one thread per process that beats for every run the process has in hand.

A run must tell its row it is alive every heartbeat interval, even while its
experiment never saves. Starting a thread for each run and joining it at the end
cost a tenth of a short job's time on a busy machine (the start and the join each
wait for the other thread to be scheduled); one thread, started once per process
and told of each run, costs nothing per job.

A prefork pool child starts its own heart on first use (threads do not survive a
fork). When `beating` returns, a beat of that run that was under way has ended
and no other will start, as it was when each run joined its own thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator

log = logging.getLogger(__name__)

IDLE_WAIT = 3600.0  # seconds the heart sleeps when no run beats (it is woken by the next)
_STARTING = threading.Lock()


class _Beat:
    """One run's heartbeat: what to call, how often, when next; `lock` held while it beats."""

    def __init__(self, beat: Callable[[], None], interval: float) -> None:
        self.beat = beat
        self.interval = interval
        self.due = time.monotonic() + interval
        self.lock = threading.Lock()
        self.live = True


class Heart:
    """Calls each registered beat every `interval` seconds, from one thread of this process."""

    def __init__(self) -> None:
        self._pid = -1
        self._beats: set[_Beat] = set()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    @contextlib.contextmanager
    def beating(self, beat: Callable[[], None], interval: float) -> Iterator[None]:
        """Call `beat` every `interval` seconds while the block runs (first after one interval)."""
        entry = _Beat(beat, interval)
        self._start_here()
        with self._changed:
            self._beats.add(entry)
            self._changed.notify()
        try:
            yield
        finally:
            with self._changed:
                self._beats.discard(entry)
            with entry.lock:  # a beat under way ends before the run does
                entry.live = False

    def _start_here(self) -> None:
        """Start this process's thread (a forked child starts its own; one that died is
        started again)."""
        with _STARTING:
            if self._pid == os.getpid() and self._thread is not None and self._thread.is_alive():
                return
            if self._pid != os.getpid():
                self._pid = os.getpid()
                self._beats = set()
                self._changed = threading.Condition()
            self._thread = threading.Thread(target=self._run, name="dbdict-heart", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [entry for entry in self._beats if entry.due <= now]
                if not due:
                    soonest = min((entry.due for entry in self._beats), default=now + IDLE_WAIT)
                    self._changed.wait(soonest - now)
                    continue
            for entry in due:
                self._beat(entry)

    @staticmethod
    def _beat(entry: _Beat) -> None:
        with entry.lock:
            if entry.live:
                try:
                    entry.beat()
                except BaseException:  # one run's failure must not stop the others' hearts
                    log.exception("a heartbeat failed")
            entry.due = time.monotonic() + entry.interval


HEART = Heart()
