"""Telling when the code an experiment process imported has changed on disk.

A researcher edits the experiment's file while a sweep runs and expects the
jobs booked afterwards to run the new code, as a fresh `dbdict run` would. An
experiment process is reused from job to job, keeping what it imported, so
before each job it checks the files of the user's modules it imported (those
outside the standard library and the installed packages, which do not change
under a running worker): if one changed, the process retires and a fresh one,
which imports everything anew, runs the job.
"""

from __future__ import annotations

import os
import site
import sys
import sysconfig

PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # dbdict_celery/


def _installed_folders() -> tuple[str, ...]:
    """Folders whose modules are not the user's: the standard library, the installed
    packages, and this package."""
    paths = sysconfig.get_paths()
    folders = {paths[name] for name in ("stdlib", "platstdlib", "purelib", "platlib")}
    folders.update(site.getsitepackages())
    folders.add(site.getusersitepackages())
    folders.add(PACKAGE)
    return tuple(os.path.join(os.path.realpath(folder), "") for folder in folders)


class LoadedCode:
    """The files of the user's modules this process imported, as they were when imported."""

    def __init__(self) -> None:
        self._seen: set[str] = set(sys.modules)  # inherited from the supervisor: not the user's
        self._known = len(sys.modules)
        self._files: dict[str, tuple[int, int]] = {}
        self._installed = _installed_folders()

    def note(self, since: float) -> None:
        """Record the files of the modules imported since the last call (none, most often:
        then it costs a length, not a walk of every module). A file changed after `since`
        (when the run that imported it began) is recorded as changed already: the module
        may hold its older text."""
        if len(sys.modules) == self._known:
            return
        self._known = len(sys.modules)
        for name, module in list(sys.modules.items()):
            if name in self._seen:
                continue
            self._seen.add(name)
            path = getattr(module, "__file__", None)
            if not isinstance(path, str):
                continue
            path = os.path.realpath(path)
            if path.startswith(self._installed):
                continue
            try:
                found = os.stat(path)
            except OSError:
                continue
            changed = found.st_mtime > since
            self._files[path] = (-1, -1) if changed else (found.st_mtime_ns, found.st_size)

    def changed(self) -> str | None:
        """A file of the user's code that changed (or went) since it was imported, if any."""
        for path, (mtime, size) in self._files.items():
            try:
                found = os.stat(path)
            except OSError:
                return path
            if (found.st_mtime_ns, found.st_size) != (mtime, size):
                return path
        return None
