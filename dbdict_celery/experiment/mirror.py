"""Copying a directory tree into another on the same machine, in-process: the local exproot.

What rsync does for a local exproot, without a process per transfer and
without reading unchanged files: a file is copied only when its size or its
modification time (to the nanosecond) differs from the copy's, and the copy
keeps the source's times, so the next save skips it again. A file changed
within the same second, with the same size, still differs in its nanoseconds.
Like `rsync -a --delay-updates` without `--delete`, nothing is removed, and the
files of one copy land together: each is written beside its target first, and
only when all are written are they renamed over their targets, in one quick
pass. A reader never sees half a file, and a process killed during a save
leaves the files of one save or of the other (say `current.conf` and the log
it goes with), not a mix made over the whole copy.
"""

from __future__ import annotations

import contextlib
import os
import shutil

PARTIAL = ".dbdict-partial"


def mirror(source: str, target: str) -> int:
    """Copy what changed from `source` into `target` (made if missing); how many files."""
    written: list[str] = []  # targets whose new content waits beside them
    try:
        _write_beside(source, target, written)
    except BaseException:
        for destination in written:
            with contextlib.suppress(FileNotFoundError):
                os.remove(destination + PARTIAL)
        raise
    for destination in written:
        os.replace(destination + PARTIAL, destination)
    return len(written)


def _write_beside(source: str, target: str, written: list[str]) -> None:
    os.makedirs(target, exist_ok=True)
    with os.scandir(source) as entries:
        for entry in entries:
            destination = os.path.join(target, entry.name)
            if entry.is_dir(follow_symlinks=False):
                _write_beside(entry.path, destination, written)
            elif entry.is_symlink():
                _link_beside(entry.path, destination, written)
            elif entry.is_file() and not entry.name.endswith(PARTIAL):
                _copy_beside_if_changed(entry, destination, written)


def _copy_beside_if_changed(entry: os.DirEntry[str], destination: str, written: list[str]) -> None:
    stat = entry.stat(follow_symlinks=False)
    try:
        there = os.stat(destination, follow_symlinks=False)
    except FileNotFoundError:
        pass
    else:
        if (there.st_size, there.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
            return
    written.append(destination)
    shutil.copy2(entry.path, destination + PARTIAL, follow_symlinks=False)


def _link_beside(source: str, destination: str, written: list[str]) -> None:
    pointed = os.readlink(source)
    if os.path.islink(destination) and os.readlink(destination) == pointed:
        return
    partial = destination + PARTIAL
    with contextlib.suppress(FileNotFoundError):
        os.remove(partial)
    written.append(destination)
    os.symlink(pointed, partial)
