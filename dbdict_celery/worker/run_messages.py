"""What a supervisor and its experiment process say to each other, as JSON over a socket pair.

The supervisor holds the job's database connection; the experiment process
holds none (a connection per process would cost every job a login, and one
copied through a fork must never be used twice). So the supervisor sends the
job to run, and the experiment process's writes (a save with the curves
reported since the last one, a heartbeat it needs for a push, the outcome)
come back to the supervisor as requests, each answered before the experiment
goes on: `PipeWrites` is the experiment's side, `answer` the supervisor's. JSON
only: nothing but plain values crosses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any, NoReturn, Protocol

from sqlalchemy import make_url

from dbdict_celery.config import TablePath
from dbdict_celery.errors import DbdictError, StoreError
from dbdict_celery.experiment.provenance import Code
from dbdict_celery.experiment.provenance import environment as captured
from dbdict_celery.experiment.reports import Reports
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.job import TIMESTAMPS, Job, Standing
from dbdict_celery.worker.booking import Booking

log = logging.getLogger(__name__)


class RunWrites(Protocol):
    """The writes a run makes to its own row: `JobStore` in one process, `PipeWrites` in an
    experiment process (through its supervisor)."""

    path: TablePath

    def save(
        self,
        job: Job,
        state: dict[str, Any],
        exproot: str | None = None,
        code: Code | None = None,
        reports: Reports | None = None,
    ) -> Standing: ...

    def heartbeat(self, job: Job) -> Standing: ...

    def finish(
        self,
        job: Job,
        status: Status,
        state: dict[str, Any] | None = None,
        error: str | None = None,
        priority: float | None = None,
        exproot: str | None = None,
        reason: str | None = None,
        code: Code | None = None,
    ) -> Status | None: ...

    def unbook(self, job: Job, reason: str | None = None) -> Status | None: ...


def send(connection: Connection, message: dict[str, Any]) -> bool:
    """Send one message (NaN and infinities pass: both ends are Python); whether the other
    end was there to take it."""
    try:
        connection.send_bytes(json.dumps(message).encode())
    except OSError:  # the other end is gone (a broken pipe)
        return False
    return True


def receive(connection: Connection) -> dict[str, Any] | None:
    """The next message, or None once the other end is gone (or said something garbled)."""
    try:
        message: dict[str, Any] = json.loads(connection.recv_bytes())
    except (EOFError, OSError, ValueError):
        return None
    return message


# -- the job to run --------------------------------------------------------------------------


def job_message(booking: Booking, path: TablePath, workdir: str, root: str) -> dict[str, Any]:
    """What the experiment process needs to run a booked job."""
    job = {field.name: getattr(booking.job, field.name) for field in dataclasses.fields(Job)}
    for name in TIMESTAMPS:
        job[name] = job[name].isoformat() if job[name] is not None else None
    return {
        "op": "run",
        "job": job,
        "sent": booking.sent,
        "exproot": booking.exproot,
        "worker": booking.worker,
        # by its hash: the experiment process was forked from the process that captured it
        "environment": booking.environment.hash if booking.environment else None,
        "url": path.url.render_as_string(hide_password=False),
        "table": path.table,
        "workdir": workdir,
        "root": root,
        "devices": booking.devices,
    }


def booking_of(message: dict[str, Any]) -> tuple[Booking, TablePath]:
    """The booking and table a `job_message` carries."""
    job = dict(message["job"])
    job["status"] = Status(job["status"])
    for name in TIMESTAMPS:
        job[name] = datetime.fromisoformat(job[name]) if job[name] is not None else None
    environment = None
    if message["environment"] is not None and captured().hash == message["environment"]:
        environment = captured()
    devices = message["devices"]
    booking = Booking(
        Job(**job), message["sent"], message["exproot"], message["worker"], environment,
        None if devices is None else tuple(devices),
    )  # fmt: skip
    return booking, TablePath(make_url(message["url"]), message["table"])


# -- the experiment process's writes ---------------------------------------------------------


class PipeWrites:
    """A run's writes, sent to the supervisor, which makes them and answers. The outcome is
    not sent on its own: it rides in the message that ends the run (`finish_request`), so
    a job costs the two processes one exchange, not two."""

    def __init__(self, connection: Connection, path: TablePath) -> None:
        self.connection = connection
        self.path = path
        self.finish_request: dict[str, Any] | None = None

    def save(
        self,
        job: Job,
        state: dict[str, Any],
        exproot: str | None = None,
        code: Code | None = None,
        reports: Reports | None = None,
    ) -> Standing:
        answer = self._ask(
            "save", state=state, exproot=exproot, code=_code(code), reports=_reports(reports)
        )
        return Standing(answer["standing"])

    def heartbeat(self, job: Job) -> Standing:
        return Standing(self._ask("heartbeat")["standing"])

    def finish(
        self,
        job: Job,
        status: Status,
        state: dict[str, Any] | None = None,
        error: str | None = None,
        priority: float | None = None,
        exproot: str | None = None,
        reason: str | None = None,
        code: Code | None = None,
    ) -> Status | None:
        """Keep the outcome for the message that ends the run; None: not recorded yet."""
        self.finish_request = {
            "op": "finish", "status": int(status), "state": state, "error": error,
            "priority": priority, "exproot": exproot, "reason": reason, "code": _code(code),
        }  # fmt: skip
        return None

    def unbook(self, job: Job, reason: str | None = None) -> Status | None:
        return _status(self._ask("unbook", reason=reason)["status"])

    def _ask(self, op: str, **values: Any) -> dict[str, Any]:
        send(self.connection, {"op": op, **values})
        answer = receive(self.connection)
        if answer is None:  # its supervisor died: the run is lost, and must touch nothing more
            _die_with_the_supervisor()
        if "error" in answer:
            raise StoreError(answer["error"])
        return answer


REQUESTS = frozenset({"save", "heartbeat", "unbook"})  # a finish rides in the last message


def answer(store: RunWrites, job: Job, request: dict[str, Any]) -> dict[str, Any]:
    """Make the write an experiment process asks for, for its run of `job`; the answer."""
    op = request["op"]
    try:
        if op == "save":
            code = _code_of(request["code"])
            reports = _reports_of(request["reports"])
            standing = store.save(job, request["state"], request["exproot"], code, reports)
            return {"standing": standing.value}
        if op == "heartbeat":
            return {"standing": store.heartbeat(job).value}
        if op == "finish":
            status = store.finish(
                job, Status(request["status"]), request["state"], request["error"],
                request["priority"], request["exproot"], request["reason"],
                _code_of(request["code"]),
            )  # fmt: skip
            return {"status": _int(status)}
        return {"status": _int(store.unbook(job, request["reason"]))}
    except DbdictError as error:
        log.error("job %s: the %s its experiment process asked for failed: %s", job.id, op, error)
        return {"error": str(error)}


def _die_with_the_supervisor() -> NoReturn:
    """End this experiment process at once, as PR_SET_PDEATHSIG is about to: the kernel closes
    a dying supervisor's socket before it sends that signal, and a run that went on in
    between would push files its row never recorded (a state, curves) for the next run."""
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL cannot be caught")


def _code(code: Code | None) -> dict[str, Any] | None:
    return None if code is None else dataclasses.asdict(code)


def _code_of(values: dict[str, Any] | None) -> Code | None:
    return None if values is None else Code(**values)


def _reports(reports: Reports | None) -> dict[str, Any] | None:
    return reports.to_json() if reports else None


def _reports_of(curves: dict[str, Any] | None) -> Reports | None:
    return None if curves is None else Reports.from_json(curves)


def _status(value: int | None) -> Status | None:
    return None if value is None else Status(value)


def _int(status: Status | None) -> int | None:
    return None if status is None else int(status)
