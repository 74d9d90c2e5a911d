"""How one run of a job ended, as its runner reports it."""

from __future__ import annotations

from dataclasses import dataclass

from dbdict_celery.experiment.status import Status


@dataclass(frozen=True)
class Outcome:
    """How one run ended: the status it left the row in, and whether it was told to stop.

    `status` is None when the row was no longer this run's, so nothing was recorded.
    """

    status: Status | None
    stopped: bool = False
    voluntary: bool = False  # it went back to START by itself (INCOMPLETE, not told to stop)
    died: bool = False  # its process died or was lost: FAILED then means out of lives, not raised
    raised: tuple[str, ...] = ()  # a FAILED run's exception: its type's name and its bases'
