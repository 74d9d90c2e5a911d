"""Fault 8: the exproot out of reach for a while: read-only (every rsync fails), then full.

A job is never DONE without its files: a push that fails ends the run FAILED
with the reason in `error` (it is retried, from its last save, while it has
attempts left), and a job that cannot even fetch its files is given back
untouched and sent again later.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos.conftest import Chaos
from tests.conftest import wait_until

DISK_MB = 32


@pytest.fixture
def exproot_disk(tmp_path: Path) -> Iterator[Path]:
    """A small disk of its own (a tmpfs) for the exproot, to fill and to make read-only."""
    disk = tmp_path / "exproot-disk"
    disk.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", f"size={DISK_MB}m", "tmpfs", str(disk))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    yield disk
    _mount("-o", "remount,rw", str(disk))
    subprocess.run(["umount", "--lazy", str(disk)], check=False, timeout=60)


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False, timeout=60)


def _fill(disk: Path) -> Path:
    """Write a file until the disk is full; the file, to delete to free the disk (none if
    the runs' own files filled it first: then even its creation fails)."""
    filler = disk / "filler"
    with contextlib.suppress(OSError), open(filler, "wb") as out:
        for _ in range(DISK_MB * 2):
            out.write(b"\0" * 1024 * 1024)
            out.flush()
    return filler


def _a_push_failed(log: str, because: str) -> bool:
    """Whether a push failed on its last try for `because`: one that failed only on its first
    tries may be retried once the fault is gone, and end as if nothing happened."""
    failed = rf"pushing from .+ failed after \d+ tries \({re.escape(because)}"
    return re.search(failed, log) is not None


def test_exproot_read_only_then_full(chaos: Chaos, exproot_disk: Path) -> None:
    deployment = chaos.deployment
    deployment.env.update(DBDICT_EXPROOT=str(exproot_disk), DBDICT_MAX_ATTEMPTS="10",
                          DBDICT_RETRY_DELAY="2")  # fmt: skip
    deployment.exproot = exproot_disk
    chaos.schedule()
    chaos.reconcile_every(1.0)
    worker = deployment.start_worker("-c", "4")
    chaos.midway(0.2)
    assert _mount("-o", "remount,ro", str(exproot_disk)).returncode == 0
    wait_until(lambda: _a_push_failed(worker.text(), "Read-only file system"),
               "a push to fail, every try", timeout=120)  # fmt: skip
    assert _mount("-o", "remount,rw", str(exproot_disk)).returncode == 0
    chaos.midway(0.5)
    filler = _fill(exproot_disk)
    wait_until(lambda: _a_push_failed(worker.text(), "No space left on device"),
               "a push to fail, every try", timeout=120)  # fmt: skip
    filler.unlink(missing_ok=True)
    verdict = chaos.check("exproot read-only, then full", timeout=120 + chaos.jobs)
    store = deployment.store()
    retried = [job for job in store.jobs() if job.attempts > 1]
    assert retried, "runs whose push failed were run again"
    assert verdict.resumed == len(retried)
