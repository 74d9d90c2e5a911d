"""What dead runs left on this machine, cleared when a worker starts.

A run's supervisor removes its working folder and kills its processes when
the run ends, however it ends. Only a supervisor killed outright (SIGKILL,
the out-of-memory killer, a crash) leaves anything: the folder, under the
temporary directory and named by the supervisor's pid, and the experiment's
descendants that escaped its process group, each still carrying its
supervisor's name in `DBDICT_SUPERVISOR`. Whatever names a supervisor that no
longer runs is removed or killed. Processes are only looked at in this pid
namespace (a pid means nothing across containers).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import signal
import socket
import tempfile

from dbdict_celery.worker.process_tree import process_tag, supervisor_of, tag_is_live

log = logging.getLogger(__name__)

WORKDIR_PREFIX = "dbdict-run-"  # then this host, the run's process, the table, the job id


def clear_leftovers() -> None:
    """Kill orphaned job processes and remove the working folders of dead runs, logging
    what was found."""
    killed = kill_orphans()
    removed = remove_dead_workdirs()
    if killed or removed:
        log.warning(
            "dbdict: cleared what dead runs left here: %s process(es) killed, "
            "%s working folder(s) removed", killed, removed,
        )  # fmt: skip


def kill_orphans() -> int:
    """SIGKILL every process of a job whose supervisor is gone; how many."""
    killed = 0
    for pid in _pids():
        tag = None if pid == os.getpid() else supervisor_of(pid)
        if tag is None or tag_is_live(tag) or not _same_pid_namespace(pid):
            continue
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
            killed += 1
    return killed


def workdir_prefix(pid: int) -> str:
    """How the working folders of the runs of process `pid` are named: by this host (a
    temporary directory may be shared) and the process, as `process_tag` names it."""
    return f"{WORKDIR_PREFIX}{_host()}-{process_tag(pid)}-"


def remove_dead_workdirs() -> int:
    """Remove this host's working folders whose run's process is gone; how many."""
    removed = 0
    root = tempfile.gettempdir()
    here = f"{WORKDIR_PREFIX}{_host()}-"
    with contextlib.suppress(OSError):
        for name in os.listdir(root):
            owner = name.removeprefix(here).partition("-")[0]
            if name.startswith(here) and not tag_is_live(owner):
                shutil.rmtree(os.path.join(root, name), ignore_errors=True)
                removed += 1
    return removed


def _host() -> str:
    """This host, in a few characters that a file name takes."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _pids() -> list[int]:
    try:
        return [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []


def _same_pid_namespace(pid: int) -> bool:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid") == os.readlink("/proc/self/ns/pid")
    except OSError:
        return False
