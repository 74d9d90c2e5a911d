"""Letting a job in an experiment process start processes, as it could in a main process.

Celery's prefork pool processes are daemons, and multiprocessing refuses
children to a daemon ("daemonic processes are not allowed to have children"):
a `multiprocessing.Pool`, a `ProcessPoolExecutor`, joblib's workers or a PyTorch
DataLoader with workers all fail in a Celery task. An experiment process is
forked from such a pool process, so it tells multiprocessing (and billiard,
Celery's fork of it, which Celery also installs as multiprocessing's current
process) that it is a main process of its own. This takes their private
attributes, checked by `tests/worker/test_multiprocessing_parent.py` against
the Python and billiard versions the tests run on.
"""

from __future__ import annotations

import itertools
import multiprocessing.process
import os

import billiard.process


class _MainProcess(multiprocessing.process.BaseProcess):
    """What multiprocessing takes this process for: a main process of its own (as a fresh
    interpreter's), not the daemonic Celery pool process it was forked from."""

    def __init__(self) -> None:  # the state BaseProcess.__init__ gives a child, for a main
        self._identity = ()
        self._name = "ExperimentProcess"
        self._parent_pid = None
        self._parent_name = None
        self._popen = None
        self._closed = False
        self._config = {
            "authkey": multiprocessing.process.AuthenticationString(  # type: ignore[attr-defined]
                os.urandom(32)
            ),
            "semprefix": "/mp",
        }


def become_a_parent() -> None:
    """Let the job start processes with multiprocessing and with billiard (Celery's fork of
    it, which a pool process is a daemon of), as a main process would."""
    mp = multiprocessing.process
    mp._current_process = _MainProcess()  # type: ignore[attr-defined]
    mp._children = set()  # type: ignore[attr-defined]
    mp._process_counter = itertools.count(1)  # type: ignore[attr-defined]
    current = billiard.process.current_process()
    authkey = billiard.process.AuthenticationString(bytes(current.authkey))
    current._config = {**current._config, "daemon": False, "authkey": authkey}  # type: ignore[attr-defined]
    billiard.process._children = set()  # type: ignore[attr-defined]
