"""kombu's private names that dbdict relies on (worker/kombu_internals.py) are all still there
and still mean what dbdict reads them for: a kombu release that changes one fails here, by
name, rather than in a user's reconcile or embedded worker."""

from __future__ import annotations

import base64
import importlib.metadata
import inspect
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Consumer, Message, Producer, Queue
from kombu.transport import virtual
from packaging.requirements import Requirement
from packaging.version import Version

from dbdict_celery.worker.app import EMBEDDED_TRANSPORT, transport_options
from dbdict_celery.worker.kombu_internals import (
    PRIVATE,
    TESTED,
    EmbeddedTransport,
    redis_envelopes,
    sqlalchemy_envelopes,
)
from tests.conftest import REPO

pytestmark = pytest.mark.integration

USED = [(owner, name) for owner, names in PRIVATE.items() for name in names]


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Connection]:
    """A connection to an embedded (SQLite) broker of the test's own."""
    with Connection(f"sqlite:///{tmp_path}/broker.db", transport=EMBEDDED_TRANSPORT) as broker:
        broker.ensure_connection(max_retries=1)
        yield broker


@pytest.fixture
def on_redis(redis_url: str) -> Iterator[Connection]:
    """A connection to the session's Redis, with dbdict's transport options."""
    with Connection(redis_url, transport_options=transport_options(redis_url)) as broker:
        broker.ensure_connection(max_retries=1)
        yield broker


@pytest.fixture
def owners(embedded: Connection, on_redis: Connection) -> dict[str, Any]:
    """A live object of each class PRIVATE names, connected."""
    channel = embedded.default_channel
    return {
        "kombu.transport.virtual.Transport": embedded.transport,
        "kombu.transport.virtual.QoS": channel.qos,  # type: ignore[attr-defined]
        "kombu.transport.redis.Channel": on_redis.default_channel,
        "kombu.transport.sqlalchemy.Channel": channel,
        "kombu.transport.sqlalchemy.Channel.message_cls": channel.message_cls,  # type: ignore[attr-defined]
        "kombu.transport.sqlalchemy.Channel.queue_cls": channel.queue_cls,  # type: ignore[attr-defined]
    }


@pytest.mark.parametrize(("owner", "name"), USED, ids=[f"{o}.{n}" for o, n in USED])
def test_kombu_still_has_each_private_name_dbdict_uses(
    owners: dict[str, Any], owner: str, name: str
) -> None:
    assert owner in owners, f"PRIVATE names {owner}, which this test does not know"
    assert hasattr(owners[owner], name), (
        f"kombu {importlib.metadata.version('kombu')} has no {owner}.{name}: "
        "dbdict_celery/worker/kombu_internals.py relies on it"
    )


def test_the_embedded_transport_overrides_drain_events_with_kombus_signature() -> None:
    ours = list(inspect.signature(EmbeddedTransport.drain_events).parameters)
    kombus = list(inspect.signature(virtual.Transport.drain_events).parameters)
    assert ours == kombus, "kombu.transport.virtual.Transport.drain_events changed signature"


def _publish(broker: Connection, queue: Queue, *bodies: dict[str, int]) -> None:
    producer = Producer(broker.default_channel)
    for body in bodies:
        producer.publish(body, routing_key=queue.routing_key, declare=[queue], priority=3)


def _bodies(envelopes: Iterator[dict[str, Any]], queue: str) -> list[Any]:
    """The bodies of kombu envelopes sent to `queue`, decoded as reconcile decodes them (the
    session's Redis may hold other tests' messages)."""
    return [
        json.loads(base64.b64decode(envelope["body"]))
        for envelope in envelopes
        if envelope["properties"]["delivery_info"]["routing_key"] == queue
    ]


def test_waiting_and_unacknowledged_messages_are_read_without_taking_them(
    on_redis: Connection, embedded: Connection
) -> None:
    name = f"probe-{uuid.uuid4().hex[:8]}"  # the session's Redis is shared
    queue = Queue(name, routing_key=name, max_priority=9)
    _publish(on_redis, queue, {"n": 1}, {"n": 2})
    _publish(embedded, queue, {"n": 1})
    assert _bodies(sqlalchemy_envelopes(embedded.default_channel, [name]), name) == [{"n": 1}]
    channel = on_redis.default_channel
    assert sorted(_bodies(redis_envelopes(channel, [name], 0), name), key=str) == [
        {"n": 1},
        {"n": 2},
    ]

    taken: list[Message] = []
    consumer = Consumer(channel, [queue], callbacks=[lambda body, message: taken.append(message)])
    consumer.qos(prefetch_count=1)
    with consumer:
        on_redis.drain_events(timeout=5)
        assert len(taken) == 1
        read = _bodies(redis_envelopes(channel, [name], 0), name)
        assert sorted(read, key=str) == [{"n": 1}, {"n": 2}], "one waiting, one held"
        assert len(_bodies(redis_envelopes(channel, [name], 2**40), name)) == 1, "held long ago"
        taken[0].ack()


def test_kombu_is_bounded_to_the_minor_release_the_internals_were_checked_on() -> None:
    pyproject = (REPO / "pyproject.toml").read_text()
    (kombu,) = [Requirement(r) for r in re.findall(r'^ *"(kombu\b[^"]*)"', pyproject, re.M)]
    tested = Version(TESTED)
    assert kombu.specifier.contains(f"{TESTED}.0"), f"pyproject.toml excludes kombu {TESTED}"
    after = f"{tested.major}.{tested.minor + 1}.0"
    assert not kombu.specifier.contains(after), f"kombu {after} would install unchecked"
    installed = Version(importlib.metadata.version("kombu"))
    assert installed.release[:2] == tested.release[:2], f"kombu {installed} is not {TESTED}"
