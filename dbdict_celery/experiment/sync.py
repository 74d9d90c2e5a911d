"""Moving a job's working directory to and from its exproot.

An exproot is a local path or `ssh://host:path` (`ssh://host:/abs/path` is
absolute, `ssh://host:rel/path` is relative to the remote home). A local one
is mirrored in-process (`mirror.py`: only changed files, no subprocess); an
ssh one with rsync, which compares sizes and modification times to the
nanosecond (`--modify-window=-1`) rather than reading every file on both
sides. Commands run as argument lists, never through a local shell. Over ssh
the remote side always goes through the remote user's shell, so the one path
we send there is quoted with `shlex.quote`.

`DBDICT_SSH_COMMAND` (like git's `GIT_SSH_COMMAND`) sets the ssh program and
its options, e.g. `ssh -p 2222 -i ~/.ssh/cluster`; it is split with
`shlex.split`, not given to a shell. BatchMode is always on: a worker must
fail, not wait forever at a password prompt.

A transfer over a network may stall (a cut link holds every packet, refusing
none) and land long after, over files a newer run wrote meanwhile. So a push
can be given a deadline (`until`, read again as it goes: a lease that is
renewed pushes on), past which rsync is stopped and nothing more is sent; and
both rsync ends give up after STALL seconds without any data (`--timeout`,
which rsync hands to the remote end too), so the remote side stops applying
what it was sent soon after its stream stalled, whatever reaches it later.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

from dbdict_celery.config import stale_after
from dbdict_celery.errors import SyncError, UsageError
from dbdict_celery.experiment.mirror import mirror

SSH_PREFIX = "ssh://"
RETRIES = 3
TRANSFER_LIMIT = 3600.0  # seconds a transfer may take at most, with or without a deadline
Deadline = Callable[[], float]  # the time.monotonic() a transfer must be over by, as it stands


class LeaseExpired(SyncError):
    """A push was stopped at its deadline: the run may no longer write the job's files."""


def stall() -> int:
    """Seconds without data after which both ends of an rsync give up: a quarter of
    DBDICT_STALE_AFTER (a run's lease is half of it, so what a run sent before its lease
    ran out is applied, or dropped, well before another run may take the job over)."""
    return max(1, int(stale_after() / 4))


@dataclass(frozen=True)
class Remote:
    """Where a working directory is kept: a local path, or a path on an ssh host."""

    path: str
    host: str | None = None

    @classmethod
    def parse(cls, location: str) -> Remote:
        """Read `ssh://host:path` or a local path (made absolute)."""
        if not location.startswith(SSH_PREFIX):
            return cls(os.path.abspath(os.path.expanduser(location)))
        host, colon, path = location[len(SSH_PREFIX) :].partition(":")
        if not host or not colon or not path or host.startswith("-"):
            raise UsageError(f"malformed remote {location!r}: expected ssh://host:path")
        return cls(path, host)

    def join(self, *parts: str) -> Remote:
        """The remote location of a subdirectory."""
        return Remote(os.path.join(self.path, *parts), self.host)

    @property
    def rsync_spec(self) -> str:
        """The location as rsync names it, with a trailing slash: copy contents, not the folder."""
        where = f"{self.host}:{self.path}" if self.host else self.path
        return where.rstrip("/") + "/"

    def __str__(self) -> str:
        return f"{SSH_PREFIX}{self.host}:{self.path}" if self.host else self.path


def ssh_command() -> list[str]:
    """The ssh program and options to use, from DBDICT_SSH_COMMAND."""
    command = shlex.split(os.environ.get("DBDICT_SSH_COMMAND", "ssh"))
    return [*command, "-o", "BatchMode=yes"]


def ensure_dir(remote: Remote) -> None:
    """Create the remote directory and its parents (`mkdir -p`)."""
    if remote.host is None:
        try:
            os.makedirs(remote.path, exist_ok=True)
        except OSError as error:
            raise SyncError(f"cannot create {remote}: {error.strerror}") from None
        return
    remote_command = f"mkdir -p -- {shlex.quote(remote.path)}"
    _run([*ssh_command(), remote.host, remote_command], f"creating {remote}")


def pull(remote: Remote, local: str) -> None:
    """Copy what changed in the remote directory into `local`."""
    what = f"pulling from {remote} to {local}"
    if remote.host is None:
        _retrying(lambda: _copy_locally(remote.path, local), what)
        return
    _rsync(remote.rsync_spec, Remote(local).rsync_spec, what)


def push(local: str, remote: Remote, until: Deadline | None = None) -> None:
    """Copy what changed in `local` to the remote directory; over ssh, stopped at `until`
    (LeaseExpired). A local copy is done in-process and runs to its end."""
    what = f"pushing from {local} to {remote}"
    if remote.host is None:
        _retrying(lambda: _copy_locally(local, remote.path), what)
        return
    _rsync(Remote(local).rsync_spec, remote.rsync_spec, what, until)


def pull_file(remote: Remote, name: str, local: str) -> None:
    """Copy one file of the remote directory into the local directory `local`."""
    source = remote.join(name)
    where = f"{source.host}:{source.path}" if source.host else source.path
    _rsync(where, Remote(local).rsync_spec, f"pulling {source}")


def _rsync(source: str, target: str, what: str, until: Deadline | None = None) -> None:
    silence = stall()
    ssh = [*ssh_command(), "-o", f"ConnectTimeout={silence}"]
    command = ["rsync", "-a", "--delay-updates", "--modify-window=-1", f"--timeout={silence}",
               "-e", shlex.join(ssh), "--", source, target]  # fmt: skip
    _run(command, what, until)


def _run(command: list[str], what: str, until: Deadline | None = None) -> None:
    def transfer() -> str | None:
        if until is not None and until() <= time.monotonic():
            raise LeaseExpired(f"{what} stopped: the run's lease on the job's files ran out")
        return _transfer(command, until)

    _retrying(transfer, what)


def _transfer(command: list[str], until: Deadline | None) -> str | None:
    """Run a transfer program, stopped at `until`; None if it worked, else what went wrong."""
    limit = time.monotonic() + TRANSFER_LIMIT
    try:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
    except OSError as error:
        return str(error)

    def left() -> float:  # seconds until the deadline as it stands now
        return (min(limit, until()) if until else limit) - time.monotonic()

    with process:
        while True:
            try:
                _, stderr = process.communicate(timeout=max(0.0, min(left(), 1.0)))
                break
            except subprocess.TimeoutExpired:
                if left() <= 0:
                    process.kill()
                    process.communicate()
                    return "stopped: out of time"
    return None if process.returncode == 0 else f"exit {process.returncode}" + _cause(stderr)


def _copy_locally(source: str, target: str) -> str | None:
    """Mirror a local directory; None if it worked, else what went wrong."""
    try:
        mirror(source, target)
    except OSError as error:
        return f"{error.strerror or error}" + (f": {error.filename}" if error.filename else "")
    return None


def _retrying(transfer: Callable[[], str | None], what: str) -> None:
    """Run a transfer, a few times if it fails: networks and NFS hiccup."""
    detail = None
    for attempt in range(RETRIES):
        if attempt:
            time.sleep(attempt)
        detail = transfer()
        if detail is None:
            return
    raise SyncError(f"{what} failed after {RETRIES} tries ({detail})")


def _cause(stderr: str) -> str:
    """What rsync or ssh said went wrong: its first specific line (`rsync: ... No space left
    on device (28)`), not the generic summary that ends its output (`rsync error: ...`)."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    specific = [line for line in lines if not line.startswith("rsync error")]
    chosen = specific[0] if specific else (lines[-1] if lines else "")
    return f": {chosen}" if chosen else ""
