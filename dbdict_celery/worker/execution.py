"""Running a booked job's experiment in this process, its writes going through `writes`.

The one body of a run, wherever it runs: in the experiment process a
supervisor started for it (its writes answered by the supervisor), or in the
pool process itself with DBDICT_ISOLATION=inline (its writes straight to the
store, its heartbeats from this process's heart).
"""

from __future__ import annotations

import logging
import traceback
from typing import Any

from dbdict_celery.config import capture_enabled
from dbdict_celery.errors import (
    DbdictError,
    ExperimentUnavailable,
    ModuleMissing,
    NameMissing,
    NotRunnableHere,
    UsageError,
)
from dbdict_celery.experiment.channel import Channel, resolve_experiment
from dbdict_celery.experiment.provenance import Code, code_of
from dbdict_celery.experiment.status import Status
from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.store.attempt import StopReason
from dbdict_celery.store.job import RESTART_PRIORITY
from dbdict_celery.store.limits import Limits
from dbdict_celery.worker.booking import Booking
from dbdict_celery.worker.dbchannel import DBRSyncChannel, row_state
from dbdict_celery.worker.lease import Lease
from dbdict_celery.worker.outcome import Outcome
from dbdict_celery.worker.run_messages import RunWrites

log = logging.getLogger(__name__)


def execute(
    writes: RunWrites,
    booking: Booking,
    workdir: str,
    root: str,
    stop: StopFlag | None,
    lease: Lease,
    heartbeat_interval: float | None = None,
) -> Outcome:
    """Run the booked job's experiment in this process and record its outcome through
    `writes`; the run beats every `heartbeat_interval` seconds (None: its supervisor does).
    A SystemExit or the like is recorded FAILED, then goes on up."""
    job = booking.job
    try:
        experiment = resolve_experiment(job.experiment)
    except (ModuleMissing, NameMissing) as error:  # this machine lacks it: not the job's fault
        unavailable = ExperimentUnavailable(
            f"{error}: on this machine, {job.experiment!r} cannot be found (start workers "
            "where the experiment's module is on PYTHONPATH, or install it)"
        )
        writes.unbook(job, str(unavailable))
        raise unavailable from None
    except UsageError as error:  # the experiment's own code is broken: the job's fault
        writes.finish(job, Status.FAILED, error=str(error), code=_code(job.experiment))
        return Outcome(Status.FAILED)
    channel = DBRSyncChannel(
        writes, booking, workdir, root, experiment, heartbeat_interval, stop,
        lease=lease, code=_code(job.experiment),
    )  # fmt: skip
    try:
        outcome = channel.run(force=True)
    except NotRunnableHere as error:
        writes.unbook(job, str(error))
        raise
    except BaseException as error:  # SystemExit too: the row must not stay RUNNING
        failed = _failed(writes, channel, error)
        if not isinstance(error, Exception):
            raise
        return failed
    state = row_state(channel.state)
    ended = Status.START if outcome is Channel.INCOMPLETE else Status.DONE
    limited = None  # why it FAILED, if it reached its time limit
    if ended is Status.START and channel.stop.reason == StopReason.TIME_LIMIT:
        ended, why = Limits.from_record(job.limits).at_time_limit(saved=bool(channel.saves))
        limited = None if ended is Status.START else why
    priority = RESTART_PRIORITY if ended is Status.START else None
    if ended is Status.START and not channel.stop_requested and not channel.saves:
        log.warning(
            "job %s returned INCOMPLETE (True) without saving anything: it is sent again "
            "later, with a growing delay. An experiment that is done returns None "
            "(channel.COMPLETE); INCOMPLETE asks to be run again.",
            job.id,
        )
    status = writes.finish(
        job, ended, state, error=limited, priority=priority, **_unrecorded(channel)
    )
    return Outcome(status, channel.stop_requested, voluntary=_voluntary(ended, channel))


def _voluntary(ended: Status, channel: DBRSyncChannel) -> bool:
    """Whether the run asked to be run again without being told to stop."""
    return ended is Status.START and not channel.stop_requested


def _unrecorded(channel: DBRSyncChannel) -> dict[str, Any]:
    """What the outcome records of the run beside its status: why it was stopped (if it
    was), and the exproot and code no save recorded yet."""
    return {
        "reason": channel.stop.reason if channel.stop_requested else None,
        "exproot": channel.unrecorded_exproot,
        "code": channel.unrecorded_code,
    }


def _failed(writes: RunWrites, channel: DBRSyncChannel, error: BaseException) -> Outcome:
    """Record a run that raised: FAILED with the experiment's traceback (or the error that
    ended the run) and its state, or, if that state cannot be stored, with the reason and
    the row's last good save left in place."""
    reason = channel.state.dbdict.get("error") or "".join(
        traceback.format_exception_only(type(error), error)
    )
    try:
        state: dict[str, Any] | None = row_state(channel.state)
    except DbdictError as unstorable:
        state = None
        if str(unstorable) not in reason:
            reason = f"{reason}\n{unstorable} (the row keeps its last good save)"
    status = writes.finish(channel.job, Status.FAILED, state, error=reason, **_unrecorded(channel))
    log.error("job %s failed:\n%s", channel.job.id, reason)
    raised = tuple(kind.__name__ for kind in type(error).__mro__)  # as --retry-on names them
    return Outcome(status, channel.stop_requested, raised=raised)


def _code(experiment: str) -> Code | None:
    """The code `experiment` runs, if capture is on ("unknown" where it cannot be told)."""
    if not capture_enabled():
        return None
    try:
        return code_of(experiment)
    except Exception:  # capture never fails a run
        log.exception("the code of %s could not be recorded", experiment)
        return Code()
