"""A job table holding a small sweep, and the dashboard of its database in a test client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dbdict_celery.store.store import JobStore
from dbdict_celery.web.app import dashboard_app
from tests.web.sweep import Sweep, fill

LOCAL = "http://127.0.0.1"  # the dashboard without a password answers loopback names only


@pytest.fixture
def sweep(store: JobStore, tmp_path: Path) -> Sweep:
    return fill(store, tmp_path / "exproot")


@pytest.fixture
def client(location: str, sweep: Sweep) -> Iterator[TestClient]:
    with TestClient(dashboard_app(location), base_url=LOCAL) as client:
        yield client


@pytest.fixture
def table(store: JobStore) -> str:
    """The path of the sweep's table in the dashboard."""
    return f"/tables/{store.path.table}"
