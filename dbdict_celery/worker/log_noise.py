"""Worker log lines that report what is expected, made quiet: an ERROR or a traceback in a
worker's log must mean that something is wrong.

- A message handed back during a warm shutdown (`Reject(requeue=True)`): Celery logs
  it as a WARNING with a traceback; it is one INFO line here.
- A pool process that ended on the shutdown's SIGTERM: Celery's pool logs an ERROR;
  it is INFO while the worker shuts down.
- An ack that fails on the embedded broker while it shuts down (its SQLAlchemy
  session is mid-commit): the message is not lost, it is delivered again, and the
  row makes the copy harmless. INFO while the worker shuts down.
- "Failed to mark task ... as revoked in backend: No result backend is configured":
  every worker hearing a revoke says it; there is no result backend by design (the
  row holds the results). Dropped.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.exceptions import Reject
from celery.signals import after_setup_logger, after_setup_task_logger

from dbdict_celery.worker.stop_requests import shutting_down


class ExpectedNoise(logging.Filter):
    """A handler filter: drops or quiets the expected lines listed in the module's docstring."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = str(record.msg)
        if text.startswith("Failed to mark task") and "No result backend" in record.getMessage():
            return False
        if _handed_back(record) or (shutting_down() and _ended_by_the_shutdown(text, record)):
            _quiet(record)
        return True


def _handed_back(record: logging.LogRecord) -> bool:
    error = record.exc_info[1] if record.exc_info else None
    return isinstance(error, Reject) and bool(getattr(error, "requeue", False))


def _ended_by_the_shutdown(text: str, record: logging.LogRecord) -> bool:
    return text.startswith("call_soon_ack immediate exec failed") or (
        text.startswith("Process %r pid:%r exited with") and "SIGTERM" in str(record.args)
    )


def _quiet(record: logging.LogRecord) -> None:
    record.levelno, record.levelname = logging.INFO, "INFO"
    record.exc_info, record.exc_text = None, None


_FILTER = ExpectedNoise()


@after_setup_logger.connect
@after_setup_task_logger.connect
def _install(logger: logging.Logger | None = None, **_: Any) -> None:
    for handler in logger.handlers if logger is not None else ():
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
