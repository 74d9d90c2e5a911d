"""Every use dbdict makes of kombu's private internals, in this one module.

kombu's public API can neither read a queue without taking its messages nor
change how long a virtual transport sleeps between two looks. dbdict needs both:

- reconcile learns which jobs have a message by reading Redis's priority lists
  and its hash of delivered, unacknowledged messages, or the embedded broker's
  message table (`broker_queue.py` asks the readers below);
- the embedded broker delivers a job's message as soon as a worker may take it
  (`EmbeddedTransport`), and gives each thread its own database session
  (`EmbeddedChannel`).

Each private name relied on is listed in PRIVATE, by the class that has it:
tests/worker/test_kombu_internals.py checks each on live objects, and fails
naming the one kombu no longer has. pyproject.toml bounds kombu below its next
minor release (TESTED is the one the checks passed on): raise the bound only
once they pass on the new one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from queue import Empty
from typing import Any

from kombu.transport import sqlalchemy

TESTED = "5.7"  # the kombu minor release these internals were checked on
PRIVATE: dict[str, tuple[str, ...]] = {
    "kombu.transport.virtual.Transport": ("cycle", "channels", "_deliver"),
    "kombu.transport.virtual.QoS": ("can_consume",),
    "kombu.transport.redis.Channel": (
        "client",
        "priority_steps",
        "_q_for_pri",
        "unacked_key",
        "unacked_index_key",
    ),
    "kombu.transport.sqlalchemy.Channel": ("session", "message_cls", "queue_cls", "_open"),
    "kombu.transport.sqlalchemy.Channel.message_cls": ("payload", "queue_id", "visible"),
    "kombu.transport.sqlalchemy.Channel.queue_cls": ("id", "name"),
}
PAGE = 10_000  # messages read per round trip
POLLING_INTERVAL = 0.05  # seconds between two looks at an empty queue
FULL_WAIT = 0.002  # seconds between two looks while every prefetch slot is taken


def redis_envelopes(
    channel: Any, names: list[str], delivered_since: float
) -> Iterator[dict[str, Any]]:
    """kombu's envelope of each message waiting in the Redis queues `names` (over all their
    priority lists), then of each delivered but unacknowledged one delivered after
    `delivered_since` (a time.time()), whatever its queue: a held message is a job's
    message wherever it came from."""
    client = channel.client
    lists = dict.fromkeys(
        channel._q_for_pri(name, level) for name in names for level in channel.priority_steps
    )
    for queue in lists:
        for start in range(0, int(client.llen(queue)), PAGE):
            for payload in client.lrange(queue, start, start + PAGE - 1):
                yield json.loads(payload)
    for tag, delivered in client.hscan_iter(channel.unacked_key):
        when = client.zscore(channel.unacked_index_key, tag)
        if when is not None and when < delivered_since:
            continue
        message, _exchange, _routing_key = json.loads(delivered)
        yield message


def sqlalchemy_envelopes(channel: Any, names: list[str]) -> Iterator[dict[str, Any]]:
    """kombu's envelope of each message waiting in the SQLAlchemy broker's queues `names`."""
    message = channel.message_cls
    queue = channel.queue_cls
    waiting = (
        channel.session.query(message.payload)
        .join(queue, message.queue_id == queue.id)
        .filter(queue.name.in_(names), message.visible.is_(True))
    )
    try:
        for (payload,) in waiting.yield_per(PAGE):
            yield json.loads(payload)
    finally:
        channel.session.commit()


class EmbeddedChannel(sqlalchemy.Channel):
    """kombu's SQLAlchemy channel with one session per thread, not one per channel.

    Celery acknowledges and rejects a message from the thread that hears of its task's
    end (the prefork pool's result thread), and a reject that requeues writes the
    message back, while the worker's main thread polls with the channel's session. A
    SQLAlchemy session is not made for two threads: sharing one stopped the worker with
    "concurrent operations are not permitted" when a shutdown handed messages back.
    """

    def __init__(self, connection: Any, **kwargs: Any) -> None:
        self._sessions = threading.local()
        super().__init__(connection, **kwargs)

    @property
    def session(self) -> Any:
        """This thread's session."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            _engine, session_maker = self._open()
            session = self._sessions.session = session_maker()
        return session


class EmbeddedTransport(sqlalchemy.Transport):
    """kombu's SQLAlchemy transport, made to deliver at once: the embedded broker's.

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

    Channel = EmbeddedChannel
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
