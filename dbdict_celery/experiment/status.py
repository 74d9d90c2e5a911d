"""A job's status: one vocabulary for `current.conf`'s `dbdict.status` and the table's column."""

from __future__ import annotations

import enum


class Status(enum.IntEnum):
    """A job's status; 0, 1 and 2 keep the original dbdict's meaning.

    An IntEnum, so a status read back from a file or a row as a plain number
    compares equal to its member, and is written back as that number.
    """

    START = 0
    RUNNING = 1
    DONE = 2
    FAILED = 3
    CANCELLED = 4
    PRUNED = 5  # stopped early by optimize's pruner, its state kept
