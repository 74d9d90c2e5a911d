"""New jobs in batches, each made ready in a thread while the caller writes the one before.

Hashing a job's parameters and encoding them as JSON is most of what an insert costs
this process; writing a batch is mostly waiting on the database (and, for `schedule`,
on the broker). Made ready one batch ahead, the two overlap.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor

from dbdict_celery.store.job import NewJob


def ready_batches(jobs: Iterable[NewJob], size: int) -> Iterator[list[NewJob]]:
    """`jobs` in lists of `size` (the last may be shorter), each job's identity and JSON
    computed; an error in `jobs` (a value that cannot be stored) comes where its batch
    would."""
    pending = iter(jobs)

    def next_batch() -> list[NewJob]:
        batch = list(itertools.islice(pending, size))
        for job in batch:
            job.param_hash, job.params_json  # noqa: B018 (computed now, cached on the job)
        return batch

    with ThreadPoolExecutor(1, thread_name_prefix="dbdict-batches") as preparing:
        ahead = preparing.submit(next_batch)
        while batch := ahead.result():
            ahead = preparing.submit(next_batch)
            yield batch
