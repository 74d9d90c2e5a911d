"""The memory a supervisor shares with its experiment process: the stop request and the lease.

Both processes must see a stop at once and without a round trip: the
experiment's `switch()` reads it between steps, and the supervisor starts the
grace period from it, whichever process learned of it first (a signal to
either, a save or heartbeat that found a cancel). A few bytes of anonymous
shared memory, mapped before the fork, do that; they are written from signal
handlers, so they take no lock (one writer per field at a time, each field a
machine word or set before the flag that announces it).
"""

from __future__ import annotations

import ctypes
import mmap
from typing import Any

from dbdict_celery.experiment.stopping import StopFlag
from dbdict_celery.worker.lease import Lease

REASON_BYTES = 64


class _Fields(ctypes.Structure):
    _fields_ = (
        ("requested", ctypes.c_bool),
        ("lost", ctypes.c_bool),
        ("held_until", ctypes.c_double),
        ("length", ctypes.c_double),
        ("reason", ctypes.c_char * REASON_BYTES),
    )


class RunBlock:
    """One experiment process's shared fields, reset for each job it runs."""

    def __init__(self) -> None:
        self._memory = mmap.mmap(-1, ctypes.sizeof(_Fields))
        self.fields = _Fields.from_buffer(self._memory)
        self.stop = SharedStopFlag(self.fields)
        self.lease = SharedLease(self.fields)

    def reset(self, held_until: float, length: float) -> None:
        """Start a job: no stop asked, the lease as its booking left it."""
        self.fields.requested = False
        self.fields.lost = False
        self.fields.reason = b""
        self.fields.held_until = held_until
        self.fields.length = length


class _Field:
    """An attribute that lives in the shared fields, under the same name."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return getattr(instance._fields, self.name)

    def __set__(self, instance: Any, value: Any) -> None:
        setattr(instance._fields, self.name, value)


class SharedStopFlag(StopFlag):
    """A stop flag both processes read and set."""

    requested = _Field()

    def __init__(self, fields: _Fields) -> None:
        self._fields = fields
        self.relay = None

    @property
    def reason(self) -> str | None:
        return self._fields.reason.decode("utf-8", "replace") or None

    @reason.setter
    def reason(self, value: str | None) -> None:
        self._fields.reason = (value or "").encode()[: REASON_BYTES - 1]


class SharedLease(Lease):
    """A lease both processes extend."""

    held_until = _Field()
    length = _Field()
    lost = _Field()

    def __init__(self, fields: _Fields) -> None:
        self._fields = fields
