"""Copying a directory tree into another on the same machine, in-process: the local exproot.

What rsync does for a local exproot, without a process per transfer and
without reading unchanged files: a file is copied only when its size or its
modification time (to the nanosecond) differs from the copy's, and the copy
keeps the source's times, so the next save skips it again. A file changed
within the same second, with the same size, still differs in its nanoseconds.
Each file is written beside its target and renamed over it, so a reader
never sees half a file. Like `rsync -a` without `--delete`, nothing is removed.
"""

from __future__ import annotations

import os
import shutil

PARTIAL = ".dbdict-partial"


def mirror(source: str, target: str) -> int:
    """Copy what changed from `source` into `target` (made if missing); how many files."""
    os.makedirs(target, exist_ok=True)
    copied = 0
    with os.scandir(source) as entries:
        for entry in entries:
            destination = os.path.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                copied += mirror(entry.path, destination)
            elif entry.is_symlink():
                _copy_link(entry.path, destination)
            elif entry.is_file() and not entry.name.endswith(PARTIAL):
                copied += _copy_if_changed(entry, destination)
    return copied


def _copy_if_changed(entry: os.DirEntry[str], destination: str) -> int:
    stat = entry.stat(follow_symlinks=False)
    try:
        there = os.stat(destination, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if (there.st_size, there.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            return 0
    partial = destination + PARTIAL
    shutil.copy2(entry.path, partial, follow_symlinks=False)
    os.replace(partial, destination)
    return 1


def _copy_link(source: str, destination: str) -> None:
    pointed = os.readlink(source)
    if os.path.islink(destination) and os.readlink(destination) == pointed:
        return
    partial = destination + PARTIAL
    if os.path.lexists(partial):
        os.remove(partial)
    os.symlink(pointed, partial)
    os.replace(partial, destination)
