"""A job's captured output: stdout and stderr from its working directory or its exproot.

While a job runs on this machine, its working directory has the freshest
output; otherwise the copy in its exproot (pushed at every save) is read,
fetched with rsync when the exproot is on another host.
"""

from __future__ import annotations

import os
import socket
import tempfile

from dbdict_celery.errors import SyncError, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.sync import pull_file
from dbdict_celery.store.job import Job, job_dir
from dbdict_celery.store.store import JobStore

STREAMS = ("stdout", "stderr")


def read_log(
    store: JobStore, job: Job, stream: str = "stdout", last: int | None = None
) -> tuple[str, bytes]:
    """Where the output was read from, and all of it so far, or its `last` bytes (a page
    showing the tail of a log of gigabytes reads no more); empty if there is none yet."""
    if stream not in STREAMS:
        raise UsageError(f"no such output {stream!r}: use stdout or stderr")
    if job.status == Status.RUNNING and job.workdir and job.host == socket.gethostname():
        local = os.path.join(job.workdir, stream)
        if os.path.exists(local):
            return local, _read(local, last)
    if not job.exproot:
        return "", b""
    remote = job_dir(job.exproot, store.path, job.id)
    if remote.host is None:
        local = os.path.join(remote.path, stream)
        return local, _read(local, last) if os.path.exists(local) else b""
    with tempfile.TemporaryDirectory(prefix="dbdict-logs-") as fetched:
        try:
            pull_file(remote, stream, fetched)
        except SyncError:
            return str(remote.join(stream)), b""  # not written yet, or out of reach for now
        return str(remote.join(stream)), _read(os.path.join(fetched, stream), last)


def _read(path: str, last: int | None) -> bytes:
    with open(path, "rb") as captured:
        if last is not None:
            captured.seek(max(0, os.fstat(captured.fileno()).st_size - last))
        return captured.read()
