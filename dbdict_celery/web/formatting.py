"""How values read in the dashboard: the Jinja filters its templates use."""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

from dbdict_celery.store.durations import duration

CELL_LIMIT = 200  # characters of a value shown in a grid cell


def cell(value: Any, limit: int = CELL_LIMIT) -> str:
    """A value as a cell: strings bare, None empty, numbers short, times to the second,
    anything else as JSON; cut at `limit` characters, saying so."""
    if value is None:
        return ""
    if isinstance(value, bool):
        shown = str(value)
    elif isinstance(value, float):
        shown = f"{value:.6g}" if math.isfinite(value) else str(value)
    elif isinstance(value, (int, str)):
        shown = str(value)
    elif isinstance(value, datetime):
        shown = value.strftime("%Y-%m-%d %H:%M:%S")
    else:
        shown = json.dumps(value, default=str)
    return shown if len(shown) <= limit else f"{shown[:limit]}… ({len(shown):,} characters)"


def since(moment: datetime | None, now: datetime) -> str:
    """How long before `now` (the database's clock) `moment` was."""
    return "" if moment is None else f"{duration(now - moment)} ago"


FILTERS = {"cell": cell, "span": duration, "since": since}
