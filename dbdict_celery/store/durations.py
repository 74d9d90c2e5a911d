"""How long something took or has waited, as people read it in a table: `3m12s`."""

from __future__ import annotations

from datetime import timedelta


def duration(span: timedelta | float | None) -> str:
    """A short human duration (a timedelta, or seconds): 45s, 3m12s, 2h05m, 3d04h."""
    if span is None:
        return ""
    seconds = max(0, int(span.total_seconds() if isinstance(span, timedelta) else span))
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    if days:
        return f"{days}d{hour:02d}h"
    if hours:
        return f"{hours}h{minute:02d}m"
    if minutes:
        return f"{minutes}m{second:02d}s"
    return f"{second}s"
