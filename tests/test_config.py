"""Table paths: the original's forms, the embedded default, validation and masking."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import make_url

from dbdict_celery import UsageError
from dbdict_celery.config import (
    broker_url,
    default_exproot,
    grace_period,
    heartbeat_interval,
    mask,
    max_attempts,
    parse_devices,
    stop_signals,
    table_path,
    transaction_pooler,
)
from tests.conftest import dbdict


@pytest.mark.parametrize(
    ("location", "url", "table"),
    [
        (
            "postgresql://u:pw@db.lab:6432/exps/sweep1",
            "postgresql://u:***@db.lab:6432/exps",
            "sweep1",
        ),
        ("postgres://u@db.lab/exps/sweep1", "postgresql://u@db.lab/exps", "sweep1"),
        ("postgresql://u@db.lab/exps", "postgresql://u@db.lab/exps", "jobs"),
        ("postgresql://u@h/exps/t?sslmode=require", "postgresql://u@h/exps?sslmode=require", "t"),
        ("sqlite:////data/jobs.db/sweep1", "sqlite:////data/jobs.db", "sweep1"),
        ("sqlite:////data/jobs.db", "sqlite:////data/jobs.db", "jobs"),
        ("sqlite:///rel/jobs.db/t2", "sqlite:///rel/jobs.db", "t2"),
    ],
)
def test_table_paths_in_the_original_form(location: str, url: str, table: str) -> None:
    path = table_path(location)
    assert (mask(path.url), path.table) == (url, table)
    assert str(path) == f"{url}/{table}"


def test_the_table_option_names_the_table() -> None:
    assert table_path("postgresql://u@h/exps", table="other").table == "other"
    with pytest.raises(UsageError, match="given twice"):
        table_path("postgresql://u@h/exps/one", table="two")


def test_dbdict_db_then_the_embedded_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBDICT_DB", "postgresql://u@h/exps/from_env")
    assert table_path().table == "from_env"
    assert table_path(table="named").table == "named", "DBDICT_DB's table is a default"
    monkeypatch.delenv("DBDICT_DB")
    monkeypatch.setenv("DBDICT_HOME", str(tmp_path))
    embedded = table_path()
    assert embedded.url.database == str(tmp_path / "jobs.db")
    assert (embedded.table, embedded.dbname) == ("jobs", "jobs")


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("postgresql://u@h/exps/jobs;DROP TABLE x", "invalid table name 'jobs;DROP TABLE x'"),
        ("postgresql://u@h/exps/1jobs", "invalid table name '1jobs'"),
        ("postgresql://u@h/exps/a/b", "expected /dbname/tablename"),
        ("postgresql://u@h", "names no database"),
        ("mysql://u:hunter2@h/db/t", "malformed table path 'mysql://u:***@h/db/t'"),
        ("jobs.db", "malformed table path"),
    ],
)
def test_bad_table_paths_are_usage_errors(location: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        table_path(location)
    assert "hunter2" not in str(caught.value)


def test_heartbeat_interval_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBDICT_HEARTBEAT", "0.5")
    assert heartbeat_interval() == 0.5
    for bad in ("soon", "0", "-1"):
        monkeypatch.setenv("DBDICT_HEARTBEAT", bad)
        with pytest.raises(UsageError, match="DBDICT_HEARTBEAT"):
            heartbeat_interval()


def test_worker_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    assert (grace_period(), max_attempts()) == (25.0, 1)
    monkeypatch.setenv("DBDICT_GRACE", "3")
    monkeypatch.setenv("DBDICT_MAX_ATTEMPTS", "4")
    assert (grace_period(), max_attempts()) == (3.0, 4)
    for bad in ("x", "0", "-2", "1.5"):
        monkeypatch.setenv("DBDICT_MAX_ATTEMPTS", bad)
        with pytest.raises(UsageError, match="DBDICT_MAX_ATTEMPTS"):
            max_attempts()
    monkeypatch.setenv("DBDICT_GRACE", "nan")
    with pytest.raises(UsageError, match="DBDICT_GRACE must be positive"):
        grace_period()


def test_broker_and_exproot_defaults_live_in_dbdict_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DBDICT_HOME", str(tmp_path))
    monkeypatch.delenv("DBDICT_BROKER", raising=False)
    monkeypatch.delenv("DBDICT_EXPROOT", raising=False)
    assert broker_url() == f"sqla+sqlite:///{tmp_path}/broker.db"
    assert default_exproot() == str(tmp_path / "exproot")
    monkeypatch.setenv("DBDICT_BROKER", "redis://h:6379/0")
    monkeypatch.setenv("DBDICT_EXPROOT", "ssh://node:/data")
    assert (broker_url(), default_exproot()) == ("redis://h:6379/0", "ssh://node:/data")


@pytest.mark.parametrize(
    "password", ["Sup3r/Secret", "p@ss@word", "ha#sh", "que?ry", "100%sure", "co:lon", "Sup3r%2FS"]
)
def test_any_password_is_read_whole_and_never_shown(password: str) -> None:
    path = table_path(f"postgresql://root:{password}@db.lab:5432/exps/sweep")
    expected = password.replace("%2F", "/")  # percent-encoded characters are decoded
    assert path.url.password == expected
    assert (path.url.username, path.url.host, path.url.port) == ("root", "db.lab", 5432)
    assert (path.url.database, path.table) == ("exps", "sweep")
    assert str(path) == "postgresql://root:***@db.lab:5432/exps/sweep"


def test_a_password_in_the_query_is_never_shown() -> None:
    """libpq takes a password in the query string too (`?password=`, `?sslpassword=`)."""
    url = make_url("postgresql://root@db.lab/exps?sslmode=require&password=Sup3r&sslpassword=k3y")
    shown = mask(url)
    assert "Sup3r" not in shown
    assert "k3y" not in shown
    assert shown == "postgresql://root@db.lab/exps?password=***&sslmode=require&sslpassword=***"


@pytest.mark.parametrize(
    "location",
    [
        "postgresql://root:Sup3r/Secret@db.lab:5432/exps/a/b",
        "postgresql://root:p@ss@db.lab:notaport/exps/t",
        "mysql://root:Sup3r/Secret@db.lab/exps/t",
        "postgresql://root:Sup3r/Secret@db.lab/exps/bad;name",
    ],
)
def test_a_malformed_path_never_shows_its_password(location: str) -> None:
    with pytest.raises(UsageError) as caught:
        table_path(location)
    message = str(caught.value)
    for secret in ("Sup3r", "Secret", "p@ss", "ss@"):
        assert secret not in message, message


def test_a_transaction_pooler_is_named_or_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert not transaction_pooler()
    monkeypatch.setenv("DBDICT_POOLER", "Transaction")
    assert transaction_pooler()
    monkeypatch.setenv("DBDICT_POOLER", "pgbouncer")
    with pytest.raises(UsageError, match="DBDICT_POOLER must be 'transaction'"):
        transaction_pooler()
    done = dbdict("status", "--db", "postgresql://root@127.0.0.1/x/jobs", cwd=tmp_path,
                  DBDICT_POOLER="session")  # fmt: skip
    assert (done.returncode, done.stderr.count("\n")) == (2, 1), done.stderr
    assert "DBDICT_POOLER must be" in done.stderr


@pytest.mark.parametrize(
    ("text", "names"),
    [("TERM", ["SIGTERM"]), ("TERM,USR2", ["SIGTERM", "SIGUSR2"]),
     ("sigusr2 term", ["SIGUSR2", "SIGTERM"]), ("USR2,USR2", ["SIGUSR2"])],
)  # fmt: skip
def test_stop_signals_by_name(monkeypatch: pytest.MonkeyPatch, text: str, names: list[str]) -> None:
    monkeypatch.setenv("DBDICT_STOP_SIGNALS", text)
    assert [each.name for each in stop_signals()] == names


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [("--gpus", "0,,1;2", "DBDICT_GPUS: malformed device '1;2'"),
     ("--gpus", "0,1,0", "DBDICT_GPUS: a device is named twice"),
     ("--stop-signals", "FOO", "DBDICT_STOP_SIGNALS: 'FOO' is not a signal that may stop"),
     ("--stop-signals", "KILL", "DBDICT_STOP_SIGNALS: 'KILL' is not a signal that may stop"),
     ("--stop-signals", "CHLD", "DBDICT_STOP_SIGNALS: 'CHLD' is not a signal that may stop"),
     ("--stop-signals", "TERM,SIGNOPE", "DBDICT_STOP_SIGNALS: 'SIGNOPE' is not a signal"),
     ("--stop-signals", ",", "DBDICT_STOP_SIGNALS: no signal named")],
)  # fmt: skip
def test_a_worker_refuses_a_malformed_setting_in_one_line(
    tmp_path: Path, option: str, value: str, says: str
) -> None:
    done = dbdict("worker", option, value, cwd=tmp_path, DBDICT_HOME=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1, done.stderr
    assert done.stderr.startswith(f"dbdict: {says}"), done.stderr


def test_a_workers_own_options_are_its_own_after_celerys_too(tmp_path: Path) -> None:
    """`dbdict worker -c 2 --gpus ...`: --gpus is dbdict's (checked here), not Celery's."""
    done = dbdict("worker", "-c", "2", "--gpus", "0,0", cwd=tmp_path, DBDICT_HOME=str(tmp_path))
    assert done.returncode == 2
    assert done.stderr.startswith("dbdict: DBDICT_GPUS: a device is named twice"), done.stderr


@pytest.mark.parametrize(
    ("text", "devices"),
    [("", ()), ("0,1,2,3", ("0", "1", "2", "3")), (" 0 , 1 ", ("0", "1")),
     ("GPU-5f2c1e0a-1b2c,MIG-1/2", None)],
)  # fmt: skip
def test_gpu_lists(text: str, devices: tuple[str, ...] | None) -> None:
    if devices is None:
        with pytest.raises(UsageError, match="malformed device 'MIG-1/2'"):
            parse_devices(text, "DBDICT_GPUS")
    else:
        assert parse_devices(text, "DBDICT_GPUS") == devices
