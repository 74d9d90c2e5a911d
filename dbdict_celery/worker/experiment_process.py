"""The experiment process: where a supervisor's jobs run, one after another.

Forked from the supervisor (a Celery pool process, or `dbdict sql`) once it has
its imports, so a job starts warm, and kept from job to job while each job
leaves it as it found it. It is its own process group and a child subreaper,
dies with its supervisor, and is a main process as far as `multiprocessing`
knows: a job may start a `multiprocessing.Pool`, a `ProcessPoolExecutor`, joblib
workers or DataLoader workers as it would under `dbdict run` (a Celery pool
process is a daemon, whose children multiprocessing refuses).

After each job it kills whatever the job left running below it. It retires
(and the supervisor starts a fresh one for the next job) when the job left
processes or threads behind, raised SystemExit or the like, or when the user's
code it imported changed on disk (`fresh_code.py`), so no job inherits
another's mess or runs code older than its booking. A job given other GPUs than the
first it ran is run by a fresh one too: CUDA reads `CUDA_VISIBLE_DEVICES` once, when a
process first uses it.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, NoReturn

from dbdict_celery.errors import DbdictError, NotRunnableHere
from dbdict_celery.experiment.channel import resolve_experiment
from dbdict_celery.experiment.stopping import handled_signals, stop_signals
from dbdict_celery.worker.execution import execute
from dbdict_celery.worker.fresh_code import LoadedCode
from dbdict_celery.worker.multiprocessing_parent import become_a_parent
from dbdict_celery.worker.process_tree import (
    REAP_WAIT,
    SUPERVISOR_VARIABLE,
    become_subreaper,
    children,
    die_with_parent,
    group_of,
    kill_descendants,
    kill_trees,
    process_tag,
    reap,
    tagged,
)
from dbdict_celery.worker.run_block import RunBlock
from dbdict_celery.worker.run_messages import PipeWrites, booking_of, receive, send

log = logging.getLogger(__name__)

RESET_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
CRASHED = 70  # the exit code of an experiment process whose own loop failed
JOB_VARIABLE = "DBDICT_JOB_ID"  # the job an experiment process runs, for what it starts
RUN_VARIABLE = "DBDICT_RUN_ID"
DEVICES_VARIABLE = "CUDA_VISIBLE_DEVICES"

_given_devices: list[str] = []  # in an experiment process: the GPUs its jobs were given


class ExperimentProcess:
    """The supervisor's handle on its experiment process."""

    def __init__(self) -> None:
        self.block = RunBlock()
        ours, theirs = multiprocessing.Pipe()
        become_subreaper()  # the job's orphans come to the supervisor if this process dies
        supervisor = os.getpid()
        self.tag = tag = process_tag(supervisor)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child's coverage is not collected)
            ours.close()
            _serve(theirs, self.block, supervisor, tag)
        theirs.close()
        self.pid = pid
        self.connection = ours
        self.jobs_run = 0  # jobs sent to it
        self.wait_status: int | None = None
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+: its exit is seen at once
            self._pidfd = os.pidfd_open(pid)

    def sentinels(self) -> list[Any]:
        """What becomes readable when the process speaks or (with a pidfd) ends."""
        return [self.connection] if self._pidfd is None else [self.connection, self._pidfd]

    def has_ended(self) -> bool:
        """Whether the process has exited (it is then reaped: `wait_status` says how)."""
        if self.wait_status is None:
            with contextlib.suppress(ChildProcessError):
                pid, status = os.waitpid(self.pid, os.WNOHANG)
                if pid:
                    self.wait_status = status
        return self.wait_status is not None

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the process to exit; whether it did."""
        deadline = time.monotonic() + timeout
        while not self.has_ended():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def kill(self) -> None:
        """Kill the process and every process of its jobs: those below it, and those handed
        to this supervisor when their parent died (they carry its tag); reap them."""
        supervisor = os.getpid()

        def job_processes() -> list[int]:
            adopted = [
                child
                for child in children(supervisor)  # not reaped: their pids are not reused
                if child != self.pid and (group_of(child) == self.pid or tagged(child, self.tag))
            ]
            return adopted if self.wait_status is not None else [self.pid, *adopted]

        killed = kill_trees(job_processes)
        self.wait(REAP_WAIT)
        reap(killed)
        self.close()

    def close(self) -> None:
        """Let go of the process (ended, or ending by itself): its socket and pidfd."""
        self.connection.close()
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None


def describe(wait_status: int | None) -> str:
    """How a process ended, in words: "signal SIGKILL (9)", "exit code 3"."""
    if wait_status is None:
        return "unknown"
    if os.WIFSIGNALED(wait_status):
        number = os.WTERMSIG(wait_status)
        try:
            return f"signal {signal.Signals(number).name} ({number})"
        except ValueError:
            return f"signal {number}"
    return f"exit code {os.waitstatus_to_exitcode(wait_status)}"


# -- inside the experiment process -----------------------------------------------------------


def _serve(connection: Connection, block: RunBlock, supervisor: int, tag: str) -> NoReturn:
    """Run the jobs the supervisor sends until it is gone or this process retires."""
    code = 0
    try:
        _become_experiment_process(supervisor, tag)
        loaded = LoadedCode()
        threads = threading.active_count()
        while (message := receive(connection)) is not None:
            with stop_signals(block.stop):  # a stop from the first moment, never a death
                answer = _run_one(message, connection, block, loaded)
            answer["retire"] = answer.get("retire") or threading.active_count() > threads
            send(connection, answer)
            if answer["retire"]:
                break
    except BaseException:
        log.exception("the experiment process failed")
        code = CRASHED
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _become_experiment_process(supervisor: int, tag: str) -> None:
    os.setpgid(0, 0)  # a signal to the worker's group (Ctrl-C) goes to the supervisor only
    die_with_parent()
    if os.getppid() != supervisor:  # it died before this process could ask to die with it
        os._exit(0)
    become_subreaper()
    for signum in {*(getattr(signal, name) for name in RESET_SIGNALS), *handled_signals()}:
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    become_a_parent()
    os.environ[SUPERVISOR_VARIABLE] = tag
    stdin = os.open(os.devnull, os.O_RDONLY)  # not the terminal of a group it is not in
    os.dup2(stdin, 0)
    os.close(stdin)


def _run_one(
    message: dict[str, Any], connection: Connection, block: RunBlock, loaded: LoadedCode
) -> dict[str, Any]:
    began = time.time()
    changed = loaded.changed()
    if changed is not None:
        return {"op": "stale", "file": changed, "retire": True}
    booking, path = booking_of(message)
    job = booking.job
    if booking.devices is not None:
        visible = ",".join(booking.devices)
        if _given_devices and _given_devices[0] != visible:
            return {"op": "stale", "file": DEVICES_VARIABLE, "retire": True}
        _given_devices[:] = [visible]
        os.environ[DEVICES_VARIABLE] = visible
    os.environ.update({JOB_VARIABLE: str(job.id), RUN_VARIABLE: job.run_id or ""})
    with contextlib.suppress(DbdictError):  # imported now, so that its files are noted
        resolve_experiment(job.experiment)
    loaded.note(began)
    retire = False
    writes = PipeWrites(connection, path)
    try:
        outcome = execute(
            writes, booking, message["workdir"], message["root"], block.stop, block.lease
        )
        answer: dict[str, Any] = {
            "op": "ended",
            "stopped": outcome.stopped,
            "voluntary": outcome.voluntary,
            "raised": outcome.raised,
        }
    except NotRunnableHere as error:
        answer = {"op": "not runnable", "kind": type(error).__name__, "message": str(error)}
    except BaseException:  # SystemExit, KeyboardInterrupt: its FAILED outcome is kept
        answer = {"op": "ended", "stopped": block.stop.requested, "voluntary": False}
        retire = True
    answer["finish"] = writes.finish_request
    loaded.note(began)
    left = kill_descendants(os.getpid())
    reap({*children(os.getpid()), *left})  # and the job's children that ended unwaited
    if left:
        log.warning("job %s left %s process(es) running: killed", job.id, len(left))
    answer["retire"] = retire or bool(left)
    return answer
