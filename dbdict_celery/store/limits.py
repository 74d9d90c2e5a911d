"""A job's limits: how long a run may last, how much memory its processes may hold, how
many GPUs it needs, and how its failures are retried. Given to `dbdict schedule` (and
`optimize`) and kept with the job, in its row's `limits` column, so that whichever worker
runs it applies them.

Durations are written `90`, `90s`, `15m`, `2h`, `1.5d`; sizes `512K`, `300M`, `8G`, `1T`
(powers of 1024) or a number of bytes. A malformed one is a usage error, named.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

from dbdict_celery.config import DEFAULT_QUEUE
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status

if TYPE_CHECKING:
    from dbdict_celery.store.job import Job

FAIL = "fail"  # a run that reaches its time limit ends its job FAILED...
REQUEUE = "requeue"  # ...or puts it back to START, to resume from its last save elsewhere
DEFAULT_BACKOFF = 30.0  # seconds before the first retry of a job given --retries
JITTER = 0.5  # each retry's delay is stretched by up to this fraction, at random
GPU_QUEUE = ".gpus"  # `Q.gpusK`: the Celery queue of queue Q's jobs that need K GPUs
_NEEDED = re.compile(rf"{re.escape(GPU_QUEUE)}(\d+)$")

_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_BYTES = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)", re.IGNORECASE)
_SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?", re.IGNORECASE)
_EXCEPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_GROUP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
IN_COLUMNS = ("max_running", "group")  # kept in the row's columns, not in its `limits`


def _valid(key: str, value: Any) -> bool:
    """Whether one recorded limit makes valid limits on its own."""
    try:
        Limits(**{key: value})
    except (UsageError, TypeError):
        return False
    return True


def gpus_needed(queue: str | None) -> int:
    """The GPUs each job of a Celery queue needs: K for `Q.gpusK`, else 0."""
    found = _NEEDED.search(queue or "")
    return int(found[1]) if found else 0


def duration(text: str, what: str = "duration") -> float:
    """Seconds, from `90`, `90s`, `15m`, `2h` or `1.5d`; a UsageError naming `what` if
    malformed or not above zero."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match[1]) * _SECONDS[(match[2] or "s").lower()] if match else 0.0
    if seconds <= 0:
        raise UsageError(f"malformed {what} {text!r}: a positive number of s, m, h or d (e.g. 2h)")
    return seconds


def size(text: str, what: str = "size") -> int:
    """Bytes, from `300M`, `8G`, `512K`, `1T` (powers of 1024; `MB`, `MiB` alike) or a
    number of bytes; a UsageError naming `what` if malformed or not above zero."""
    match = _SIZE.fullmatch(text.strip())
    count = int(float(match[1]) * _BYTES[match[2].lower()]) if match else 0
    if count <= 0:
        raise UsageError(f"malformed {what} {text!r}: a positive number of K, M, G or T (e.g. 8G)")
    return count


def format_duration(seconds: float) -> str:
    """`2h`, `90m`, `90s`, `0.5s`: in the largest unit that makes it a whole number."""
    for unit in ("d", "h", "m"):
        amount = seconds / _SECONDS[unit]
        if amount >= 1 and amount == int(amount):
            return f"{int(amount)}{unit}"
    return f"{seconds:g}s"


def format_size(count: int) -> str:
    """`8G`, `300M`, `1.5G`; a measured size to a tenth of its largest unit (`2.1G`)."""
    for unit in ("t", "g", "m", "k"):
        amount = count / _BYTES[unit]
        if amount >= 1:
            return f"{round(amount, 1):g}{unit.upper()}"
    return f"{count}B"


@dataclass(frozen=True)
class Limits:
    """What a job's runs may use, and how its failures are retried (none by default)."""

    time_limit: float | None = None  # seconds a run may last, from its start
    on_time_limit: str = FAIL  # FAIL or REQUEUE
    memory: int | None = None  # bytes its processes may hold together (their PSS)
    retries: int | None = None  # failures sent again; None: the worker's DBDICT_MAX_ATTEMPTS
    retry_backoff: float = DEFAULT_BACKOFF  # seconds before the first retry, doubled after
    retry_on: tuple[str, ...] = field(default=())  # exception types retried; (): every one
    gpus: int = 0  # GPUs each run has to itself (in CUDA_VISIBLE_DEVICES)
    max_running: int | None = None  # the most jobs of its group that may run at once...
    group: str | None = None  # ...its group (`run_group`; by default, its sweep's)

    def __post_init__(self) -> None:
        if self.on_time_limit not in (FAIL, REQUEUE):
            raise UsageError(f"unknown --on-time-limit {self.on_time_limit!r}: {FAIL} or {REQUEUE}")
        if self.max_running is not None and self.max_running < 1:
            raise UsageError(f"--max-running must be at least 1, not {self.max_running}")
        if self.group is not None and not _GROUP_NAME.fullmatch(self.group):
            raise UsageError(
                f"malformed --group {self.group!r}: letters, digits and . _ : - (at most 100)"
            )
        if self.group is not None and self.max_running is None:
            raise UsageError("--group names the jobs --max-running counts: give --max-running N")
        if self.gpus < 0:
            raise UsageError(f"--gpus must be 0 or more, not {self.gpus}")
        if self.retries is not None and self.retries < 0:
            raise UsageError(f"--retries must be 0 or more, not {self.retries}")
        for name in self.retry_on:
            if not _EXCEPTION_NAME.fullmatch(name):
                raise UsageError(f"malformed exception name {name!r} in --retry-on (e.g. OSError)")

    @classmethod
    def parse(
        cls,
        time_limit: str | None = None,
        on_time_limit: str = FAIL,
        memory: str | None = None,
        retries: int | None = None,
        retry_backoff: str | None = None,
        retry_on: str | None = None,
        gpus: int = 0,
        max_running: int | None = None,
        group: str | None = None,
    ) -> Limits:
        """Limits as the command line gives them: durations and sizes as text, the exception
        types comma-separated. Each malformed value is a UsageError naming its option."""
        return cls(
            time_limit=None if time_limit is None else duration(time_limit, "--time-limit"),
            on_time_limit=on_time_limit,
            memory=None if memory is None else size(memory, "--memory"),
            retries=retries,
            retry_backoff=(
                DEFAULT_BACKOFF
                if retry_backoff is None
                else duration(retry_backoff, "--retry-backoff")
            ),
            retry_on=tuple(name.strip() for name in (retry_on or "").split(",") if name.strip()),
            gpus=gpus,
            max_running=max_running,
            group=group,
        )

    def record(self) -> dict[str, Any] | None:
        """The limits as the row's `limits` keeps them: the values that differ from the
        defaults, or None if none does (the group and its cap are columns of their own)."""
        default = Limits()
        kept = {
            name: value
            for name, value in asdict(self).items()
            if value != getattr(default, name) and name not in IN_COLUMNS
        }
        if "retry_on" in kept:
            kept["retry_on"] = list(self.retry_on)
        return kept or None

    @classmethod
    def of(cls, job: Job) -> Limits:
        """A job's limits: its `limits`, its group and its cap."""
        return replace(cls.from_record(job.limits), max_running=job.max_running,
                       group=job.run_group)  # fmt: skip

    def grouped(self, sweep: str) -> Limits:
        """These limits, the group named after `sweep` if they cap one and name none."""
        if self.max_running is None or self.group is not None:
            return self
        return replace(self, group=sweep)

    @classmethod
    def from_record(cls, record: dict[str, Any] | None) -> Limits:
        """The limits a row keeps (None: none). Keys and values this release does not know
        (a later one wrote them) are left out: a booked job never fails on its limits."""
        known = {item.name for item in fields(cls)}
        values = {key: value for key, value in (record or {}).items() if key in known}
        if isinstance(values.get("retry_on"), list):
            values["retry_on"] = tuple(values["retry_on"])
        try:
            return cls(**values)
        except (UsageError, TypeError):
            return cls(**{key: value for key, value in values.items() if _valid(key, value)})

    def queue(self, queue: str | None) -> str | None:
        """The Celery queue of a job asking for these limits, scheduled to `queue`: that one
        (None: the default), or for a job needing K GPUs `<queue>.gpusK`, which only workers
        with at least K GPUs consume (`worker/gpu_slots.py`)."""
        return f"{queue or DEFAULT_QUEUE}{GPU_QUEUE}{self.gpus}" if self.gpus else queue

    def enforced_by_supervisor(self) -> bool:
        """Whether the job has limits only a supervisor can hold a run to (a time or memory
        limit): a run inside the worker's own process cannot be killed alone."""
        return self.time_limit is not None or self.memory is not None

    def describe(self) -> str:
        """The limits in words, for `dbdict show`: "time limit 2h (then requeue), memory 8G,
        3 retries (from 30s, on ValueError)"; "" for none."""
        parts = [f"{self.gpus} GPU{'s' if self.gpus > 1 else ''}"] if self.gpus else []
        if self.max_running is not None:
            parts.append(f"at most {self.max_running} of group {self.group} running")
        if self.time_limit is not None:
            parts.append(
                f"time limit {format_duration(self.time_limit)} (then {self.on_time_limit})"
            )
        if self.memory is not None:
            parts.append(f"memory {format_size(self.memory)}")
        if self.retries is not None:
            on = f", on {', '.join(self.retry_on)}" if self.retry_on else ""
            retries = "1 retry" if self.retries == 1 else f"{self.retries} retries"
            parts.append(f"{retries} (from {format_duration(self.retry_backoff)}{on})")
        return ", ".join(parts)

    def at_time_limit(self, killed: bool = False, saved: bool = True) -> tuple[Status, str]:
        """How a run that reached its time limit leaves its job (FAILED, or START with
        --on-time-limit requeue if it `saved`: one that did not would only do the same run
        again), and the reason it gives; `killed`: it had to be."""
        limit = format_duration(self.time_limit or 0.0)
        how = " (killed after the grace period)" if killed else ""
        if self.on_time_limit == REQUEUE and saved:
            return Status.START, f"time limit {limit} reached{how}"
        unsaved = ", without a save to resume from" if self.on_time_limit == REQUEUE else ""
        return Status.FAILED, f"time limit {limit} reached{how}{unsaved}"

    def out_of_memory(self, held: int) -> str:
        """Why a run killed for holding `held` bytes ended FAILED."""
        limit = format_size(self.memory or 0)
        return f"out of memory (limit {limit}): its processes held {format_size(held)}"

    def retried(self, raised: tuple[str, ...]) -> bool:
        """Whether a failure that raised an exception of these types (its class and its bases,
        by name) may be retried: it raised (a run ended by a limit did not), and, if the job
        names the types it retries, one of them."""
        return bool(raised) and (not self.retry_on or bool(set(self.retry_on) & set(raised)))

    def retry_delay(self, failures: int) -> float:
        """Seconds before the job is sent again after its `failures`-th failure: the backoff,
        doubled for each failure before, stretched at random by up to JITTER (so that the
        jobs of a sweep that failed together are not all sent again at once)."""
        stretch = 1 + random.uniform(0, JITTER)  # noqa: S311
        return float(self.retry_backoff * 2 ** (failures - 1) * stretch)
