"""Who may see the dashboard: loopback only without credentials, and with them, only those
who give them."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dbdict_celery.errors import UsageError
from dbdict_celery.web.address import Address
from dbdict_celery.web.app import dashboard_app
from dbdict_celery.web.auth import Credentials
from dbdict_celery.web.serve import check_exposure
from tests.conftest import dbdict


def _basic(text: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(text.encode()).decode()}


def test_every_request_needs_the_credentials(location: str) -> None:
    app = dashboard_app(location, credentials=Credentials.parse("admin:s3:cret"))
    with TestClient(app) as client:
        refused = client.get("/")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Basic ")
        assert client.get("/static/dashboard.css").status_code == 401
        assert client.get("/", headers=_basic("admin:wrong")).status_code == 401
        assert client.get("/", headers={"authorization": "Basic %%%"}).status_code == 401
        assert client.get("/", headers=_basic("admin:s3:cret")).status_code == 200


@pytest.mark.parametrize("text", ["127.0.0.1:8050", "[::1]:8050", "localhost:1", ":8050"])
def test_loopback_needs_no_credentials(text: str) -> None:
    check_exposure(Address.parse(text), None)


@pytest.mark.parametrize("text", ["0.0.0.0:8050", "192.168.1.10:80", "[::]:8050", "box:80"])
def test_beyond_loopback_credentials_are_required(text: str) -> None:
    with pytest.raises(UsageError, match="open to the network"):
        check_exposure(Address.parse(text), None)
    check_exposure(Address.parse(text), Credentials("a", "b"))


@pytest.mark.parametrize("text", ["admin", "admin:", ":secret"])
def test_malformed_credentials_are_refused(text: str) -> None:
    with pytest.raises(UsageError, match="user:password"):
        Credentials.parse(text)


def test_the_command_refuses_an_open_bind_in_one_line(tmp_path: Path) -> None:
    done = dbdict("dashboard", "--bind", "0.0.0.0:8050", cwd=tmp_path)
    assert done.returncode == 2
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--basic-auth" in done.stderr
    bad = dbdict("dashboard", "--bind", "0.0.0.0:8050", cwd=tmp_path,
                 DBDICT_DASHBOARD_AUTH="nocolon")  # fmt: skip
    assert bad.returncode == 2
    assert "nocolon" not in bad.stderr, "what was given (a password, maybe) is not echoed"


def test_other_host_names_are_refused_without_a_password(client: TestClient) -> None:
    """Against DNS rebinding: a site's name pointed at 127.0.0.1 reads nothing."""
    assert client.get("/", headers={"host": "evil.example:8050"}).status_code == 400
    assert client.get("/", headers={"host": "localhost:8050"}).status_code == 200
