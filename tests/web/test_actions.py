"""`dbdict dashboard --allow-actions`: cancel, requeue and priority buttons on job pages,
only behind a password, and only for the forms the dashboard's own pages carry."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.app import dashboard_app
from dbdict_celery.web.auth import Credentials
from tests.conftest import dbdict
from tests.web.conftest import LOCAL
from tests.web.sweep import Sweep

AUTH = {"authorization": "Basic " + base64.b64encode(b"me:pw").decode()}


@pytest.fixture
def acting(location: str, sweep: Sweep) -> Iterator[TestClient]:
    app = dashboard_app(location, credentials=Credentials.parse("me:pw"), allow_actions=True)
    with TestClient(app, headers=AUTH) as client:
        yield client


def _token(client: TestClient, page: str) -> str:
    found = re.search(r'name="token" value="([^"]+)"', client.get(page).text)
    assert found, "the job page carries the form's token"
    return found.group(1)


def test_the_buttons_cancel_requeue_and_reprioritize(
    acting: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    waiting = sweep.waiting[0]
    page = f"{table}/jobs/{waiting}"
    token = _token(acting, page)
    moved = acting.post(f"{page}/action", data={"token": token, "action": "priority",
                                                "priority": "3.5"})  # fmt: skip
    assert moved.status_code == 200, moved.text  # redirected to the job's page
    assert "priority 3.5" in moved.text
    assert store.get(waiting).priority == 3.5
    cancelled = acting.post(f"{page}/action", data={"token": token, "action": "cancel"})
    assert f"job {waiting} cancelled" in cancelled.text
    assert store.get(waiting).status is Status.CANCELLED
    assert 'id="requeue"' in cancelled.text, "a cancelled job's page offers a requeue"
    requeued = acting.post(f"{page}/action", data={"token": token, "action": "requeue"})
    assert f"job {waiting} requeued" in requeued.text
    assert store.get(waiting).status is Status.START


def test_forms_from_elsewhere_are_refused(
    acting: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    waiting = sweep.waiting[0]
    page = f"{table}/jobs/{waiting}"
    token = _token(acting, page)
    for data, headers in [
        ({"action": "cancel"}, {}),  # no token
        ({"action": "cancel", "token": "guessed"}, {}),
        ({"action": "cancel", "token": token}, {"origin": "https://evil.example"}),
    ]:
        refused = acting.post(f"{page}/action", data=data, headers=headers)
        assert refused.status_code == 403, refused.text
    assert store.get(waiting).status is Status.START, "nothing changed"
    bad = acting.post(f"{page}/action", data={"token": token, "action": "priority",
                                              "priority": "high"})  # fmt: skip
    assert bad.status_code == 400
    missing = acting.post(f"{table}/jobs/999/action", data={"token": token, "action": "cancel"})
    assert missing.status_code == 404


def test_without_allow_actions_there_are_no_buttons(
    location: str, sweep: Sweep, table: str
) -> None:
    with TestClient(dashboard_app(location), base_url=LOCAL) as client:
        page = client.get(f"{table}/jobs/{sweep.waiting[0]}")
        assert 'name="token"' not in page.text
        posted = client.post(f"{table}/jobs/{sweep.waiting[0]}/action", data={"action": "cancel"})
        assert posted.status_code == 404


def test_actions_need_a_password(location: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--allow-actions needs --basic-auth"):
        dashboard_app(location, allow_actions=True)
    done = dbdict("dashboard", "--allow-actions", cwd=tmp_path)
    assert done.returncode == 2
    assert "--allow-actions needs --basic-auth" in done.stderr
