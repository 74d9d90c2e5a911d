"""What the benchmarks share: fair side-by-side timing, and dropping their tables."""

from __future__ import annotations

import statistics
from collections.abc import Callable

from sqlalchemy import text

from dbdict_celery.store.store import JobStore


def alternate(
    first: Callable[[], float], second: Callable[[], float], rounds: int
) -> tuple[float, float]:
    """Medians of `rounds` alternating measurements of two sides: this machine is noisy."""
    a, b = [], []
    for _ in range(rounds):
        a.append(first())
        b.append(second())
    return statistics.median(a), statistics.median(b)


def drop(store: JobStore) -> None:
    """Remove a benchmark's table and its schema record."""
    with store.engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {store.path.table}"))  # validated name
        connection.execute(
            text("DELETE FROM dbdict_schema WHERE table_name = :name"), {"name": store.path.table}
        )
