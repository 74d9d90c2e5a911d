"""`dbdict metrics-server`: Prometheus metrics counted from the job table, scraped over HTTP
and read back with prometheus_client's own parser, on SQLite and on Postgres."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import make_url

from tests.conftest import dbdict, free_port, start_dbdict, wait_until

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str, table: str) -> Samples:
    """The samples of `table` at `url`, by name and labels (the table's own labels left out)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (loopback)
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, frozenset((k, v) for k, v in sample.labels.items()
                                if k not in ("database", "table"))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("table") == table
    }  # fmt: skip


def labels(**given: str) -> frozenset[tuple[str, str]]:
    return frozenset(given.items())


@pytest.fixture
def server(location: str, tmp_path: Path) -> Iterator[str]:
    """A metrics server on the test's table, and on a table that does not exist."""
    port = free_port()
    missing = location.rpartition("/")[0] + "/never_made"
    process = start_dbdict("metrics-server", "--db", location, "--db", missing,
                           "--bind", f"127.0.0.1:{port}", cwd=tmp_path)  # fmt: skip
    url = f"http://127.0.0.1:{port}/metrics"

    def answers() -> bool:
        assert process.poll() is None, process.communicate()
        return _body_or_none(url) is not None

    try:
        wait_until(answers, "the metrics server to answer", timeout=60)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_metrics_count_the_table(location: str, tmp_path: Path, server: str) -> None:
    def scraped() -> Samples:
        return scrape(server, location.rpartition("/")[2])

    for args in (["tests.experiments.mark", "n=range(3)", f"marks={tmp_path}/marks"],
                 ["--queue", "gpu", "tests.experiments.fail", "n=range(2)"]):  # fmt: skip
        done = dbdict("schedule", "--db", location, "--no-enqueue", *args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert scraped()[("dbdict_jobs", labels(status="START", queue="dbdict"))] == 3

    ran = dbdict("sql", "--db", location, "-n", "0", str(tmp_path / "exproot"), cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr  # the two `fail` jobs failed

    samples = scraped()
    assert samples[("dbdict_table_up", labels())] == 1
    assert samples[("dbdict_jobs", labels(status="DONE", queue="dbdict"))] == 3
    assert samples[("dbdict_jobs", labels(status="FAILED", queue="gpu"))] == 2
    assert samples[("dbdict_jobs", labels(status="START", queue="dbdict"))] == 0
    assert samples[("dbdict_attempts_total", labels(outcome="done"))] == 3
    assert samples[("dbdict_attempts_total", labels(outcome="failed"))] == 2
    assert samples[("dbdict_reconcile_repairs_total", labels())] == 0
    assert not any(name == "dbdict_oldest_waiting_seconds" for name, _ in samples)

    requeued = dbdict("requeue", "--db", location, "--status", "failed", "--no-enqueue",
                      cwd=tmp_path)  # fmt: skip
    assert requeued.returncode == 0, requeued.stderr
    samples = scraped()
    assert samples[("dbdict_jobs", labels(status="START", queue="gpu"))] == 2
    assert samples[("dbdict_oldest_waiting_seconds", labels(queue="gpu"))] >= 0
    # the table that does not exist is reported down, and the scrape still answers
    assert scrape(server, "never_made") == {("dbdict_table_up", labels()): 0}


@pytest.mark.parametrize("location", ["postgresql"], indirect=True)
def test_no_password_is_served_or_printed(location: str, tmp_path: Path) -> None:
    """Postgres here trusts local connections, so a password in the URL is accepted and
    ignored: it must still appear nowhere."""
    secret = "s3cret-metrics-pw"  # noqa: S105 (what must not leak)
    with_password = str(make_url(location.rpartition("/")[0]).set(password=secret))
    table = f"{with_password}/{location.rpartition('/')[2]}"
    done = dbdict("schedule", "--db", table, "--no-enqueue", "tests.experiments.fail", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    port = free_port()
    process = start_dbdict("metrics-server", "--db", table, "--bind", f"127.0.0.1:{port}",
                           cwd=tmp_path)  # fmt: skip
    try:
        body = wait_until(lambda: _body_or_none(f"http://127.0.0.1:{port}/metrics"),
                          "the metrics server to answer", timeout=60)  # fmt: skip
    finally:
        process.terminate()
        out, err = process.communicate(timeout=30)
    assert 'dbdict_jobs{database="' in body
    assert secret not in body + out + err


def _body_or_none(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 (loopback)
            return str(response.read().decode())
    except OSError:
        return None


def test_a_malformed_bind_is_one_line(tmp_path: Path) -> None:
    done = dbdict("metrics-server", "--bind", "nowhere", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "HOST:PORT" in done.stderr
