"""The embedded broker's transport: kombu's SQLAlchemy transport, made to deliver at once.

kombu's virtual transports sleep `polling_interval` whenever a look finds
nothing to deliver, for either of two reasons:

- the queue is empty: the stock transport then sleeps a whole second. A SQLite
  poll costs a few hundred microseconds, so this one looks every 50 ms;
- the worker may not take more yet (each pool process holds its one prefetched
  message, so that priorities hold): no query was made, and the next message may
  be taken as soon as a running job ends. Sleeping the poll here made every job
  wait for it (two jobs a second with the stock transport, 35 with 50 ms).
  This transport looks again after 2 ms, then after twice as long each time up
  to the 50 ms poll: a short job's end is seen at once, and a long one costs no
  more wake-ups than an empty queue. Such a look checks the worker's own
  counters; it makes no query.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from kombu.transport import sqlalchemy

POLLING_INTERVAL = 0.05  # seconds between two looks at an empty queue
FULL_WAIT = 0.002  # seconds between two looks while every prefetch slot is taken


class Transport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport with a short poll, and a shorter one when full."""

    polling_interval = POLLING_INTERVAL

    def drain_events(  # type: ignore[override]  # the signature of kombu's virtual Transport
        self, connection: Any, timeout: float | None = None
    ) -> None:
        """Deliver one message (kombu's loop, but for how long it sleeps between looks)."""
        assert self.cycle is not None, "the transport has a channel once connected"
        started = time.monotonic()
        full_wait = FULL_WAIT
        while True:
            try:
                self.cycle.get(self._deliver, timeout=timeout)
                return
            except Empty:
                if timeout is not None and time.monotonic() - started >= timeout:
                    raise TimeoutError() from None
                if self._full():
                    pause, full_wait = full_wait, min(2 * full_wait, self.polling_interval)
                else:
                    pause = self.polling_interval
                time.sleep(pause if timeout is None else min(pause, timeout))

    def _full(self) -> bool:
        """Whether no channel may take a message now (its prefetch slots all in use)."""
        return all(not channel.qos.can_consume() for channel in self.channels or ())
