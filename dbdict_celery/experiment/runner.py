"""Running one experiment on this machine: the `run` (cmdline) and `filemerge` runners.

Both build a state from parameters, pick a working directory and run the
experiment there through a `StandardChannel`. They are the Python API behind
`dbdict run` and `dbdict filemerge`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.channel import (
    CURRENT_CONF,
    ORIG_CONF,
    StandardChannel,
    resolve_experiment,
)
from dbdict_celery.experiment.params import DD, convert, expand, flatten, parse, parse_lines

_UNSAFE = re.compile(r"[^\w.,=+-]")
_MAX_NAME = 200


@dataclass(frozen=True)
class RunOptions:
    """The options every local runner takes (the original's flags)."""

    force: bool = False
    redirect_stdout: bool = False
    redirect_stderr: bool = False
    workdir: str | None = None
    dry_run: bool = False
    restart: bool = False


@dataclass(frozen=True)
class RunResult:
    """What a local run did: the experiment's return value, final state and directory (None
    after a dry run: its temporary directory is gone)."""

    outcome: Any
    state: DD
    workdir: str | None

    @property
    def status(self) -> int:
        """The `dbdict.status` the run ended with."""
        return int(self.state.dbdict.status)


@contextlib.contextmanager
def importing_from_cwd() -> Iterator[None]:
    """Within the block, dotted names (experiments, builders) import from the current
    directory first, then from the rest of the Python path.

    The one rule of the `dbdict` command, of workers (started in the project's folder) and of
    the Python API: a script run as `python ~/sweeps/launch.py` from the project's folder
    finds the project's modules as `dbdict schedule` there would, though Python put only the
    script's own folder on its path. The directory is added by its absolute name, as it is
    on entry: an experiment runs in its working directory, where `''` would point.
    """
    here = os.getcwd()
    added = here not in sys.path
    if added:
        sys.path.insert(0, here)
    try:
        yield
    finally:
        if added:
            with contextlib.suppress(ValueError):  # the block took it out itself
                sys.path.remove(here)


def run_cmdline(
    experiment: str, params: Sequence[str], options: RunOptions = RunOptions()
) -> RunResult:
    """Run `experiment` with `key=value` / `key::builder` parameters."""
    return run_state(experiment, parse(*params), options)


def run_filemerge(
    experiment: str, sources: Sequence[str], options: RunOptions = RunOptions()
) -> RunResult:
    """Run `experiment` with the union of parameter files and `key=value` arguments.

    Later sources override earlier ones, key by key.
    """
    if not sources:
        raise UsageError("filemerge needs at least one parameter file")
    flat: dict[str, Any] = {}
    for source in sources:
        flat.update(_read_source(source))
    return run_state(experiment, flat, options)


def _read_source(source: str) -> dict[str, Any]:
    if ("=" in source or "::" in source) and not os.path.isfile(source):
        return parse(source)
    try:
        with open(source, encoding="utf-8") as lines:
            return parse_lines(lines)
    except FileNotFoundError:
        raise UsageError(f"parameter file {source!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read parameter file {source!r}: {error}") from None


def run_state(experiment: str, flat: dict[str, Any], options: RunOptions) -> RunResult:
    """Run `experiment` on a flat parameter dict in the directory the options choose.

    The experiment, and the builders it makes, import from the current directory first
    (`importing_from_cwd`), as they do for `dbdict run`.
    """
    if options.workdir and options.dry_run:
        raise UsageError("use only one of --workdir and --dry-run")
    with importing_from_cwd():
        return _run_state(experiment, flat, options)


def _run_state(experiment: str, flat: dict[str, Any], options: RunOptions) -> RunResult:
    function = resolve_experiment(experiment)
    state = expand(flat)
    state.setdefault("dbdict", DD()).experiment = experiment
    if options.dry_run:
        workdir = tempfile.mkdtemp(prefix="dbdict-dry-run-")
    else:
        workdir = options.workdir or default_workdir(experiment, flat)
        _check_same_job(workdir, state, options.restart)
        _make_workdir(workdir)
    channel = StandardChannel(
        workdir, function, state, options.redirect_stdout, options.redirect_stderr
    )
    try:
        outcome = channel.run(force=options.force)
    finally:
        if options.dry_run:
            shutil.rmtree(workdir, ignore_errors=True)
    return RunResult(outcome, channel.state, None if options.dry_run else channel.path)


def _make_workdir(workdir: str) -> None:
    """Make the working directory here, where a path that cannot be one (a file, a folder
    without write access) is a usage mistake told in one line, before the run begins."""
    try:
        os.makedirs(workdir, exist_ok=True)
    except OSError as error:
        raise UsageError(
            f"cannot make the working directory {workdir!r}: {error.strerror or error} "
            "(choose another --workdir)"
        ) from None


def _check_same_job(workdir: str, state: DD, restart: bool) -> None:
    """A working directory belongs to one job (an experiment and its parameters): refuse to
    resume it with others, which its saved state would silently override. With `restart`,
    its saved state goes and the run starts over."""
    saved = [os.path.join(workdir, name) for name in (ORIG_CONF, CURRENT_CONF)]
    if restart:
        for path in saved:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)
        return
    started = _started_with(workdir)
    if started is None:
        return
    given = flatten(state)
    # compared as written (repr), so that nan equals nan, and 1 never equals 1.0 or True
    differ = sorted(
        key
        for key in started.keys() | given.keys()
        if repr(started.get(key, _MISSING)) != repr(given.get(key, _MISSING))
    )
    if differ:
        shown = ", ".join(
            f"{key}={_word(started[key]) if key in started else '(unset)'}" for key in differ[:5]
        )
        raise UsageError(
            f"{workdir} holds a job started with {shown}, not what was given: "
            "choose another --workdir, or --restart to start it over with the new parameters"
        )


_MISSING = object()


def _word(value: Any) -> str:
    """A value as typed on the command line: bare when it reads back as the same string."""
    if isinstance(value, str) and convert(value) == value:
        return value
    return repr(value)


def default_workdir(experiment: str, flat: dict[str, Any]) -> str:
    """A directory name made of the experiment and its parameters, `key=value`, joined
    with commas: two experiments with the same parameters never share a directory.

    Characters unsafe in a file name become `_`; when that changed anything or
    the name is too long, a short hash of the full text keeps names distinct.
    A run begun under the earlier name (the parameters alone) still resumes there.
    """
    named = _directory_name([experiment, *_words(flat)])
    earlier = _directory_name(_words(flat) or [experiment])
    return earlier if _started_there(earlier, experiment) and not os.path.exists(named) else named


def _words(flat: dict[str, Any]) -> list[str]:
    return [f"{key}={_word(value)}" for key, value in sorted(flatten(flat).items())]


def _started_there(workdir: str, experiment: str) -> bool:
    """Whether `workdir` holds a run of `experiment` (its orig.conf says so)."""
    started = _started_with(workdir)
    return started is not None and started.get("dbdict.experiment") == experiment


def _started_with(workdir: str) -> dict[str, Any] | None:
    """The flat state a working directory's job started with (its orig.conf), if any."""
    try:
        with open(os.path.join(workdir, ORIG_CONF), encoding="utf-8") as lines:
            return flatten(expand(parse_lines(lines)))
    except OSError:  # none there (or no directory at all): a fresh job
        return None


def _directory_name(words: list[str]) -> str:
    text = ",".join(words)
    safe = _UNSAFE.sub("_", text)
    if safe == text and len(safe) <= _MAX_NAME:
        return safe
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    return f"{safe[:_MAX_NAME]}-{digest}"
