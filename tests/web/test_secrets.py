"""No password shows in the dashboard: neither the database's (from its URL), nor the
broker's, nor the dashboard's own, in any page, JSON document or error."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dbdict_celery.store.store import JobStore
from dbdict_celery.web.app import dashboard_app
from dbdict_celery.web.auth import Credentials
from tests.conftest import free_port
from tests.web.conftest import LOCAL
from tests.web.sweep import STUDY, fill, fill_study

DB_SECRET = f"pg-{secrets.token_hex(8)}"
BROKER_SECRET = f"redis-{secrets.token_hex(8)}"
DASHBOARD_SECRET = f"dash-{secrets.token_hex(8)}"


def test_no_password_appears_in_any_page_or_json(
    postgres_location: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    location = postgres_location.replace("root@", f"root:{DB_SECRET}@", 1)  # trusted: any works
    monkeypatch.setenv("DBDICT_DB", location)
    monkeypatch.setenv("DBDICT_BROKER", f"redis://:{BROKER_SECRET}@127.0.0.1:6379/0")
    monkeypatch.setenv("DBDICT_DASHBOARD_AUTH", f"admin:{DASHBOARD_SECRET}")
    store = JobStore.open(location)
    sweep = fill(store, tmp_path / "exproot")
    fill_study(store, tmp_path / "exproot")
    table = f"/tables/{store.path.table}"
    credentials = Credentials("admin", DASHBOARD_SECRET)
    token = base64.b64encode(f"admin:{DASHBOARD_SECRET}".encode()).decode()
    unreachable = location.replace("127.0.0.1:5432", f"127.0.0.1:{free_port()}")
    seen: dict[str, str] = {}
    with (
        TestClient(dashboard_app(None, credentials=credentials)) as client,
        TestClient(dashboard_app(unreachable), base_url=LOCAL) as down,
    ):
        client.headers["authorization"] = f"Basic {token}"
        for url in [
            "/",
            table,
            f"{table}/jobs",
            f"{table}/jobs?where=lr~1",
            f"{table}/jobs/{sweep.done}",
            f"{table}/jobs/{sweep.failed}",
            f"{table}/jobs/{sweep.done}/news.json",
            f"{table}/jobs/999",
            f"{table}/news.json?id={sweep.running}",
            f"{table}/compare?id={sweep.done}&id={sweep.failed}",
            f"{table}/studies/{STUDY}",
            "/tables/no_such_table",
            "/static/dashboard.js",
            "/metrics",
        ]:
            answer = client.get(url)
            assert answer.status_code in (200, 400, 404), url
            seen[url] = answer.text
        failure = down.get("/")
        assert failure.status_code == 503
        assert "***" in failure.text, "the database is named, its password masked"
        seen["database out of reach"] = failure.text
    assert "***" in seen["/"]
    for secret in (DB_SECRET, BROKER_SECRET, DASHBOARD_SECRET):
        leaks = [url for url, text in seen.items() if secret in text]
        assert not leaks, f"{secret} shows in {leaks}"
