"""A job's processes as one tree: found through /proc, killed together, none left behind.

An experiment may start anything: `subprocess.Popen`, a `multiprocessing.Pool`,
PyTorch DataLoader workers, a daemon that calls `setsid()` to leave its
process group. Killing the experiment's process group misses that last kind,
so the tree is walked instead: every process whose parent chain leads to the
experiment process. Two Linux process attributes keep the chain whole:

- the supervisor and the experiment process are *child subreapers*
  (`PR_SET_CHILD_SUBREAPER`): a process whose parent dies is handed to the
  nearest of them rather than to PID 1, so it stays in the tree;
- the experiment process dies with its supervisor (`PR_SET_PDEATHSIG`), so a
  supervisor killed outright never leaves it running.

What escapes both (the descendants of an experiment process whose supervisor
was SIGKILLed) still carry the `DBDICT_SUPERVISOR` variable of their run: a
worker sweeps those at start (`leftovers.py`). Elsewhere than Linux none of this
exists and only the experiment process itself is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
SUPERVISOR_VARIABLE = "DBDICT_SUPERVISOR"  # names the supervisor of a job's processes
KILL_ROUNDS = 20  # walks of a tree that still forks while it is being killed
REAP_WAIT = 5.0  # seconds killed processes get to end before they are left unreaped


def _prctl(option: int, value: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def become_subreaper() -> bool:
    """Adopt the orphans among this process's descendants (Linux 3.4+); whether it could."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1)


def die_with_parent() -> None:
    """Be SIGKILLed when the process (strictly: the thread) that forked this one ends."""
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (every thread's children), [] if it is gone."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{thread}/children") as f:
                found.extend(int(child) for child in f.read().split())
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, parents before their children."""
    found: list[int] = []
    below = children(pid)
    while below:
        found.extend(below)
        below = [child for parent in below for child in children(parent)]
    return found


def memory_held(pid: int) -> int:
    """The bytes `pid` and every process below it hold in memory, 0 if it is gone: their
    proportional set sizes summed (a page shared by n of them, as after a fork, counts 1/n
    in each: what the tree costs the machine, as a cgroup would count it), or their
    resident set sizes where the kernel gives no PSS (before Linux 4.14)."""
    return sum(_held(each) for each in (pid, *descendants(pid)))


def _held(pid: int) -> int:
    with (
        contextlib.suppress(OSError, ValueError, IndexError),
        open(f"/proc/{pid}/smaps_rollup") as f,
    ):
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    with contextlib.suppress(OSError, ValueError, IndexError), open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return 0


def kill_descendants(pid: int) -> set[int]:
    """SIGKILL every process below `pid`, walking again until none is left (a process may
    fork while its tree is killed); the pids killed. Zombies are left to be reaped."""
    return kill_trees(lambda: children(pid))


def kill_trees(find: Callable[[], list[int]]) -> set[int]:
    """SIGKILL the processes `find` lists, and their descendants, until it lists no live
    one; the pids killed."""
    killed: set[int] = set()
    for _ in range(KILL_ROUNDS):
        roots = find()
        tree = [each for root in roots for each in (root, *descendants(root))]
        alive = [each for each in tree if is_running(each)]
        if not alive:
            break
        killed.update(each for each in alive if _kill(each))
    return killed


def _kill(pid: int) -> bool:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap(pids: Iterable[int]) -> None:
    """Collect those of `pids` that are this process's children once they end (a killed
    process dies at once; one that does not within a few seconds is left)."""
    deadline = time.monotonic() + REAP_WAIT
    for pid in pids:
        while True:
            try:
                ended, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # not this process's child, or collected already
                break
            if ended or time.monotonic() > deadline:
                break
            time.sleep(0.005)


def supervisor_of(pid: int) -> str | None:
    """The tag naming the supervisor of a job's process, from the environment it was exec'd
    with (None: not a job's, or not readable)."""
    prefix = f"{SUPERVISOR_VARIABLE}=".encode()
    try:
        with open(f"/proc/{pid}/environ", "rb") as environ:
            variables = environ.read().split(b"\0")
    except OSError:
        return None
    for variable in variables:
        if variable.startswith(prefix):
            return variable[len(prefix) :].decode("ascii", "replace")
    return None


def tagged(pid: int, tag: str) -> bool:
    """Whether a process was started (exec'd) with `tag` naming its supervisor."""
    return supervisor_of(pid) == tag


def group_of(pid: int) -> int | None:
    """The process group of `pid` (a process the experiment forked without exec keeps the
    experiment process's group, and its environment as /proc shows it is the one it was
    exec'd with: not tagged)."""
    return _stat_field(pid, 2)


def is_running(pid: int) -> bool:
    """Whether a process runs with this pid (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return _state(pid) not in ("Z", "X", None)


def _state(pid: int) -> str | None:
    return _stat_text(pid, 0)


def _stat_text(pid: int, field: int) -> str | None:
    """Field `field` of /proc/PID/stat counted after the command (0: the state)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rpartition(")")[2].split()[field]
    except (OSError, IndexError):
        return None


def _stat_field(pid: int, field: int) -> int | None:
    text = _stat_text(pid, field)
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot, from /proc): with the pid, a name for the
    process that a later process given the same pid does not share."""
    return _stat_text(pid, 19)


def process_tag(pid: int) -> str:
    """The value of SUPERVISOR_VARIABLE for the processes supervised by `pid`."""
    return f"{pid}.{start_time(pid) or 0}"


def tag_is_live(tag: str) -> bool:
    """Whether the supervisor a tag names still runs (the same process, not its pid reused)."""
    pid_text, _, started = tag.partition(".")
    if not pid_text.isdigit():
        return False
    pid = int(pid_text)
    return is_running(pid) and start_time(pid) == started
