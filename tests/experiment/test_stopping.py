"""Stop signals: a flag while a run listens, and the usual signals for what it forks."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

from dbdict_celery.experiment.stopping import StopFlag, stop_signals
from tests.conftest import wait_until


def _ended(pid: int) -> int | None:
    done, status = os.waitpid(pid, os.WNOHANG)
    return status if done else None


def test_sigterm_sets_the_flag_and_leaves_the_process_running() -> None:
    with stop_signals(StopFlag()) as flag:
        os.kill(os.getpid(), signal.SIGTERM)
        wait_until(lambda: flag.requested, "the flag to be set")
    assert flag.reason == "SIGTERM"


def test_a_process_forked_while_signals_are_heard_ends_on_sigterm() -> None:
    """A multiprocessing worker forked by the experiment must die of a SIGTERM (a Pool's
    terminate() sends one), not set a copy of the run's flag and go on."""
    with stop_signals(StopFlag()) as flag:
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child)
            time.sleep(60)
            os._exit(0)
        os.kill(pid, signal.SIGTERM)
        status = wait_until(lambda: _ended(pid), "the child to end", timeout=10)
    assert os.WIFSIGNALED(status)
    assert os.WTERMSIG(status) == signal.SIGTERM
    assert not flag.requested


def test_process_pools_end_cleanly_inside_a_run_again_and_again() -> None:
    """Pools made and terminated in a loop, as training code does each epoch: none hangs."""
    with stop_signals(StopFlag()):
        for _ in range(30):
            with multiprocessing.get_context("fork").Pool(2) as pool:
                assert pool.map(abs, [-1, -2]) == [1, 2]
