"""The embedded broker's transport: kombu's SQLAlchemy transport, polling every 50 ms.

The stock transport sleeps a whole second whenever it finds its queue empty.
A worker that prefetches one message per process (so that priorities hold)
finds it empty after every job, so each job waited for that second: about
two jobs a second on two processes. A SQLite poll costs a few hundred
microseconds, so polling twenty times a second costs nothing worth keeping
the second for.
"""

from __future__ import annotations

from kombu.transport import sqlalchemy

POLLING_INTERVAL = 0.05  # seconds between two looks at an empty queue


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport with a short poll."""

    polling_interval = POLLING_INTERVAL
