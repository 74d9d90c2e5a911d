"""The Postgres task queue a user might pick instead: Procrastinate, with a no-op task.

`PROCRASTINATE_DB` is the libpq URL of a database holding Procrastinate's schema.
Started as `procrastinate --app benchmarks.procrastinate_app.app worker`.
"""

from __future__ import annotations

import os

import procrastinate

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(conninfo=os.environ.get("PROCRASTINATE_DB", ""))
)


@app.task(name="noop")
def noop(n: int) -> None:
    """Nothing at all, as `benchmarks/noop.py` for dbdict."""
