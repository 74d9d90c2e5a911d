"""A sweep's curves on one chart: 500 jobs' curves drawn on one page, coloured by a
parameter, chosen with the grid's filters."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from dbdict_celery.experiment.reports import Reports
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.app import dashboard_app
from tests.web.conftest import LOCAL

JOBS, STEPS = 500, 100
RATES = (0.1, 0.2, 0.3, 0.4, 0.5)


@pytest.fixture
def sweep_client(location: str, store: JobStore) -> Iterator[TestClient]:
    """500 jobs (lr in RATES, seed 0..99), each with a `loss` curve of STEPS steps."""
    new = [NewJob("tests.experiments.curve", {"lr": lr, "seed": seed})
           for lr in RATES for seed in range(JOBS // len(RATES))]  # fmt: skip
    list(store.insert(new))
    while (job := store.book()) is not None:
        reports = Reports()
        for step in range(STEPS):
            reports.add(step, {"loss": job.params["lr"] / (step + 1)})
        store.save(job, dict(job.params), reports=reports)
    with TestClient(dashboard_app(location), base_url=LOCAL) as client:
        yield client


def test_five_hundred_curves_on_one_chart(sweep_client: TestClient, store: JobStore) -> None:
    curves = f"/tables/{store.path.table}/curves"
    page = sweep_client.get(curves, params={"key": "loss", "hue": "lr"})
    assert page.status_code == 200, page.text
    assert len(re.findall(r'<path class="series" d="M', page.text)) == JOBS
    assert re.findall(r"</span>(lr=[\d.]+)</span>", page.text) == [f"lr={lr}" for lr in RATES]
    assert len(set(re.findall(r'stroke="(#\w+)"', page.text))) == len(RATES), "a colour per lr"
    chosen = sweep_client.get(curves, params={"key": "loss", "where": "lr=0.2"})
    assert len(re.findall(r'<path class="series" d="M', chosen.text)) == JOBS // len(RATES)
    assert sweep_client.get(curves, params={"key": "nothing"}).status_code == 400
    grid = sweep_client.get(f"/tables/{store.path.table}/jobs", params={"where": "lr=0.2"})
    link = re.search(r'href="([^"]*)" id="curves-link"', grid.text)
    assert link is not None
    assert "where=lr%3D0.2" in link.group(1), "the curves of the grid's jobs"
