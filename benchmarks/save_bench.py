"""The cost of a save: a working directory holding an unchanged 1 GB file and a changed
`current.conf`, pushed to its exproot, against copying only the changed file.

A save pushes the whole working directory; what it must cost is the changed file,
not the unchanged gigabyte. Two exproots, each side by side with its baseline, in
alternating rounds (median of 7):

- local: dbdict's push (`sync.push`: the in-process mirror) vs `shutil.copy2` of
  `current.conf` alone;
- ssh to loopback (a private sshd): dbdict's push (rsync, comparing sizes and
  modification times) vs rsync of `current.conf` alone over the same ssh.

Target: each save within 2x of its baseline.

Usage: python -m benchmarks.save_bench [--scale 1.0]   (--scale 0.01: a 10 MB file)
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Result, Settings, alternate, ratio, report, settings_from_arguments
from dbdict_celery.experiment import sync
from dbdict_celery.experiment.sync import Remote
from tests.services import ssh_server

ROUNDS = 7
CHUNK = 1 << 20


def _workdir(root: Path, size: int) -> Path:
    """A working directory holding a `size`-byte checkpoint and a current.conf."""
    workdir = root / "workdir"
    workdir.mkdir()
    block = os.urandom(CHUNK)
    with open(workdir / "model.ckpt", "wb") as checkpoint:
        for _ in range(max(1, size // CHUNK)):
            checkpoint.write(block)
    (workdir / "current.conf").write_text("epoch = 0\n")
    return workdir


def _timed_after_a_change(conf: Path, copy: Callable[[], object]) -> Callable[[], float]:
    """Seconds `copy` takes after current.conf changed (as every save changes it)."""
    epochs = iter(range(1, 1 << 30))

    def measured() -> float:
        conf.write_text(f"epoch = {next(epochs)}\nloss = 0.1\n")
        started = time.perf_counter()
        copy()
        return time.perf_counter() - started

    return measured


def measure(settings: Settings) -> list[Result]:
    size = settings.size(1 << 30, least=CHUNK)
    gigabytes = f"{size / (1 << 30):.2g} GB" if size >= 1 << 28 else f"{size >> 20} MB"
    with tempfile.TemporaryDirectory(prefix="dbdict-bench-save-") as home:
        root = Path(home)
        workdir = _workdir(root, size)
        conf = workdir / "current.conf"
        local = Remote(str(root / "exproot"))
        sync.push(str(workdir), local)  # the first save, of everything: not measured
        ours, baseline = alternate(
            _timed_after_a_change(conf, lambda: sync.push(str(workdir), local)),
            _timed_after_a_change(conf, lambda: shutil.copy2(conf, root / "exproot")),
            rounds=ROUNDS,
        )
        results = [
            ratio(f"save, local exproot, {gigabytes} unchanged + current.conf / copying it "
                  "alone", ours, baseline, ("<=", 2.0),
                  f"{ours * 1e3:.2f} vs {baseline * 1e3:.2f} ms", save_s=ours, copy_s=baseline),
        ]  # fmt: skip
        sshd = root / "sshd"
        sshd.mkdir()
        with ssh_server(sshd) as command:
            os.environ["DBDICT_SSH_COMMAND"] = command
            remote = Remote(str(root / "exproot-ssh"), "127.0.0.1")
            sync.ensure_dir(remote)
            sync.push(str(workdir), remote)
            alone = ["rsync", "-a", "-e", shlex.join(sync.ssh_command()), "--", str(conf),
                     f"127.0.0.1:{remote.path}/"]  # fmt: skip
            ours, baseline = alternate(
                _timed_after_a_change(conf, lambda: sync.push(str(workdir), remote)),
                _timed_after_a_change(conf, lambda: subprocess.run(alone, check=True)),
                rounds=ROUNDS,
            )
        results.append(
            ratio(f"save, ssh exproot (loopback), {gigabytes} unchanged + current.conf / rsync "
                  "of it alone", ours, baseline, ("<=", 2.0),
                  f"{ours * 1e3:.0f} vs {baseline * 1e3:.0f} ms", save_s=ours, copy_s=baseline),
        )  # fmt: skip
        shutil.rmtree(root / "exproot-ssh", ignore_errors=True)
    return results


if __name__ == "__main__":
    report(measure(settings_from_arguments(__doc__)))
