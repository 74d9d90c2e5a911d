"""`metrics.jsonl`: a job's curves among its files, beside `current.conf`.

One line per reported value, `{"key": "loss", "step": 3, "value": 0.31}` (NaN
and infinities as Python's json writes them: `NaN`, `Infinity`). A save
writes its reports here before it writes the state, so a run killed in
between leaves the curve ahead of the state, never behind: the run that
resumes from the state reports those steps again, and they replace what was
written (see `reports.py`), so each (key, step) is in the file once.

Appending is the rule; the file is rewritten only when a curve goes back.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

from dbdict_celery.experiment.reports import Reports

METRICS_FILE = "metrics.jsonl"

Point = tuple[str, int, float]  # (key, step, value)


def read_points(path: str) -> Iterator[Point]:
    """The points of a metrics file, in the order written (none if there is no file)."""
    if not os.path.isfile(path):
        return
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if line.strip():
                point = json.loads(line)
                yield point["key"], point["step"], float(point["value"])


class MetricsFile:
    """The metrics file of the working directory `folder`, as the saves of a run write it."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, METRICS_FILE)
        self.last_step: dict[str, int] = {}
        for key, step, _ in read_points(self.path):
            self.last_step[key] = max(step, self.last_step.get(key, step))

    def write(self, reports: Reports) -> None:
        """Add what was reported since the last save: appended, or the file rewritten without
        the steps the reports take back."""
        if not reports:
            return
        firsts = {key: curve.steps[0] for key, curve in reports}
        if any(first <= self.last_step.get(key, -1) for key, first in firsts.items()):
            self._rewrite(firsts, reports)
        else:
            with open(self.path, "a", encoding="utf-8") as file:
                file.writelines(_lines(reports))
        for key, curve in reports:
            self.last_step[key] = curve.steps[-1]

    def _rewrite(self, firsts: dict[str, int], reports: Reports) -> None:
        """Write the file anew (atomically): its points but those at or after the first step
        of their key's new reports, then those."""
        kept = [
            _line(key, step, value)
            for key, step, value in read_points(self.path)
            if step < firsts.get(key, step + 1)
        ]
        partial = f"{self.path}.partial"
        with open(partial, "w", encoding="utf-8") as file:
            file.writelines(kept)
            file.writelines(_lines(reports))
        os.replace(partial, self.path)


def _lines(reports: Reports) -> Iterator[str]:
    for key, curve in reports:
        for step, value in zip(curve.steps, curve.values, strict=True):
            yield _line(key, step, value)


def _line(key: str, step: int, value: float) -> str:
    return json.dumps({"key": key, "step": step, "value": value}) + "\n"
