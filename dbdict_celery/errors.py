"""Every error dbdict raises on purpose derives from `DbdictError`.

The command line turns these into one clear line and an exit code
(`exit_code`): 2 for a mistake in what the user typed, 1 for something that
went wrong while doing it. Anything else that escapes is a bug or an error
of the experiment itself, and is shown with its traceback.
"""

from __future__ import annotations


class DbdictError(Exception):
    """Base class of the errors dbdict reports to its user."""

    exit_code = 1


class UsageError(DbdictError):
    """The user asked for something malformed: a bad parameter, name or option."""

    exit_code = 2


class ResolveError(UsageError):
    """A dotted name (an experiment or a builder) could not be imported."""


class ModuleMissing(ResolveError):
    """A module (the experiment's, or one it imports) is not installed or not on the path here:
    on another machine, the same name may import."""


class NameMissing(ResolveError):
    """A module imports but has no such name: the code here is not the code the name was
    scheduled against (another version, or not yet updated on this machine)."""


class JobRefused(UsageError):
    """A job cannot run in its current status (already DONE or RUNNING) without force: nothing
    ran, and the command that would run it is the same with --force, so a usage mistake."""


class SyncError(DbdictError):
    """Moving a working directory to or from its exproot failed."""


class StoreError(DbdictError):
    """The job database cannot be reached or refused an operation."""


class TransientStoreError(StoreError):
    """The job database failed for now, not for what was asked: the connection was lost or
    refused, the server is restarting, a lock was not granted in time, a transaction lost a
    serialization race. Asking again later may succeed; any other StoreError would fail again."""


class UnstorableValue(DbdictError):
    """A value of a state cannot be kept (in a conf file or in the job table): a bytes, a set,
    an array... Named with its key, so the experiment can be fixed."""

    ADVICE = "convert it, e.g. array.tolist(), or save it as a file in the working directory"

    @staticmethod
    def type_name(value: object) -> str:
        """A value's type as the error names it: `set`, `numpy.ndarray`."""
        kind = type(value)
        module = "" if kind.__module__ == "builtins" else f"{kind.__module__}."
        return f"{module}{kind.__qualname__}"


class JobNotFound(UsageError):
    """No job has the id the user gave."""


class NotRunnableHere(DbdictError):
    """This machine cannot run a job now (its files or its code are out of reach): a fault
    of the machine, not of the job, which goes back to START, its attempt not counted."""


class ExprootUnreachable(SyncError, NotRunnableHere):
    """A job's files could not be fetched before it ran: a fault of this machine, not the job."""


class ExperimentUnavailable(NotRunnableHere):
    """A job's experiment cannot be imported on this machine (its code is not on the path)."""


class BrokerError(DbdictError):
    """The Celery broker cannot be reached: messages were not sent."""


class TableMissing(UsageError):
    """The job table named does not exist (and was not to be created): a typo, most often."""
