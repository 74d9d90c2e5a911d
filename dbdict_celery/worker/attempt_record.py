"""An attempt's record among its job's files: `dbdict-attempt-N-RUN.json`, and
`dbdict-attempt-N-RUN.diff` when its code had uncommitted changes (N the
attempt's number, RUN the first characters of its run id: a run given back
keeps its number for the next, and each keeps its own record).

A job's files travel with it (pulled when a run starts, pushed at each save),
so its directory in the exproot keeps the record of every attempt beside the
checkpoints they made, even after the table is gone. The attempt row holds a
summary; the packages are kept once per environment in the database, named
here by the environment's hash. Writing the record never fails a run.

What it costs a job is what its file costs, so: the files sit beside
`current.conf`, not in a folder (a folder costs every push a directory more
to walk and make); and with a local exproot the record is written there
directly (`DBRSyncChannel.setup`), not copied by the push: a run that resumes
pulls it back, and the push then finds it unchanged.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Any

from dbdict_celery.config import TablePath
from dbdict_celery.experiment.provenance import MASK, Code
from dbdict_celery.worker.booking import Booking

log = logging.getLogger(__name__)

RECORDS = "dbdict-attempt-"  # how the names of the record files of a job's attempts begin
RUN_ID_CHARACTERS = 8


def write_record(folder: str, table: TablePath, booking: Booking, code: Code) -> None:
    """Write the record of `booking`'s attempt into `folder`: the job's folder in a local
    exproot, else the run's working directory."""
    job, environment = booking.job, booking.environment
    attempt = f"{RECORDS}{job.attempts}-{(job.run_id or '')[:RUN_ID_CHARACTERS]}"
    diff_name = f"{attempt}.diff" if code.diff else None
    record: dict[str, Any] = {
        "table": str(table),
        "job": job.id,
        "experiment": job.experiment,
        "attempt": job.attempts,
        "run_id": job.run_id,
        "task_id": job.task_id,
        "worker": booking.worker,
        "host": job.host,
        "pid": job.pid,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "code": {
            "commit": code.commit,
            "branch": code.branch,
            "dirty": code.dirty,
            "repository": code.repository,
            "remote": code.remote,
            "diff": diff_name,
        },
    }
    if environment is not None:
        record.update(environment.summary())
    password = table.url.password
    try:
        _write(os.path.join(folder, f"{attempt}.json"), json.dumps(record, indent=2), password)
        if diff_name:
            _write(os.path.join(folder, diff_name), code.diff, password)
    except OSError as error:
        log.warning("job %s: the record of attempt %s was not written: %s",
                    job.id, job.attempts, error)  # fmt: skip


def _write(path: str, text: str, password: Any) -> None:
    """Write `text`, the database's password (given outside the environment) masked."""
    if password:
        text = text.replace(str(password), MASK)
    with open(path, "w", encoding="utf-8") as file:
        file.write(text + ("" if text.endswith("\n") else "\n"))
