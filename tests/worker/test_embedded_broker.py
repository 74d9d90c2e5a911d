"""The embedded broker's transport looks again soon when a job may end any moment."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection, Consumer, Message, Producer, Queue

from dbdict_celery.worker.app import EMBEDDED_TRANSPORT
from dbdict_celery.worker.kombu_internals import FULL_WAIT, POLLING_INTERVAL

QUEUE = Queue("jobs", routing_key="jobs")


def _pauses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, messages: int, held: int
) -> list[float]:
    """The sleeps of one drain_events(timeout=0.3) on a real SQLite broker, after a consumer
    with one prefetch slot took `held` of `messages` messages and acknowledged none."""
    pauses: list[float] = []
    sleep = time.sleep

    def recorded(seconds: float) -> None:
        pauses.append(seconds)
        sleep(seconds)

    url = f"sqlite:///{tmp_path}/broker.db"
    with Connection(url, transport=EMBEDDED_TRANSPORT) as connection:
        channel = connection.channel()
        producer = Producer(channel)
        for n in range(messages):
            producer.publish({"n": n}, routing_key="jobs", declare=[QUEUE])
        taken: list[Message] = []
        consumer = Consumer(channel, [QUEUE], callbacks=[lambda body, m: taken.append(m)])
        consumer.qos(prefetch_count=1)
        with consumer:
            for _ in range(held):
                connection.drain_events(timeout=5)
            assert len(taken) == held
            monkeypatch.setattr(time, "sleep", recorded)
            with pytest.raises(TimeoutError):
                connection.drain_events(timeout=0.3)
    return pauses


def test_a_worker_whose_prefetch_is_full_looks_again_within_milliseconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = _pauses(tmp_path, monkeypatch, messages=2, held=1)
    assert pauses[0] == FULL_WAIT, "a job ending now lets the next message go at once"
    assert pauses[:3] == [FULL_WAIT, 2 * FULL_WAIT, 4 * FULL_WAIT], "then less and less often"
    assert max(pauses) <= POLLING_INTERVAL, "never less often than an empty queue is polled"


def test_an_empty_queue_is_polled_at_the_polling_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses = _pauses(tmp_path, monkeypatch, messages=0, held=0)
    assert pauses
    assert all(pause == POLLING_INTERVAL for pause in pauses[:-1])


def test_messages_handed_back_from_another_thread_while_the_worker_polls_are_kept(
    tmp_path: Path,
) -> None:
    """A prefork worker rejects (requeues) from its result thread while its main thread
    polls: 300 such hand-backs, each message delivered again, and no error in either."""
    handed_back: queue.Queue[Message] = queue.Queue()
    errors: list[BaseException] = []

    def hand_back(count: int) -> None:
        try:
            for _ in range(count):
                handed_back.get(timeout=30).reject(requeue=True)
        except BaseException as error:  # reported by the test, not lost in the thread
            errors.append(error)

    url = f"sqlite:///{tmp_path}/broker.db"
    with Connection(url, transport=EMBEDDED_TRANSPORT) as connection:
        channel = connection.channel()
        producer = Producer(channel)
        for n in range(3):
            producer.publish({"n": n}, routing_key="jobs", declare=[QUEUE])
        delivered: list[int] = []

        def take(body: dict[str, int], message: Message) -> None:
            delivered.append(body["n"])
            handed_back.put(message)

        rejecter = threading.Thread(target=hand_back, args=(300,))
        rejecter.start()
        with Consumer(channel, [QUEUE], callbacks=[take]):
            deadline = time.monotonic() + 120
            while rejecter.is_alive() and not errors and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError):
                    connection.drain_events(timeout=0.05)
        rejecter.join(timeout=30)
    assert not errors, f"a hand-back failed: {errors[0]!r}"
    assert len(delivered) >= 300, "every message handed back was delivered again"
    assert set(delivered) == {0, 1, 2}
