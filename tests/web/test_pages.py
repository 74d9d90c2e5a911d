"""Every page and JSON document of the dashboard, on SQLite and on Postgres: what each
shows, and the one-line errors of a bad query, a job or a table that is not there."""

from __future__ import annotations

import random
import re
from pathlib import Path

from sqlalchemy import text
from starlette.testclient import TestClient

from dbdict_celery.experiment.status import Status
from dbdict_celery.search.definition import Definition
from dbdict_celery.store.job import NewJob
from dbdict_celery.store.logs import read_log
from dbdict_celery.store.store import JobStore
from tests.web.conftest import LOCAL
from tests.web.sweep import STEPS, STUDY, TRIALS, Sweep, fill_study


def test_the_start_page_lists_the_tables_of_the_database(
    client: TestClient, store: JobStore, table: str
) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert f'href="{LOCAL}{table}"' in page.text


def test_the_overview_counts_jobs_by_status_and_names_the_oldest_waiting(
    client: TestClient, sweep: Sweep, table: str
) -> None:
    page = client.get(table)
    assert page.status_code == 200
    assert re.search(r'data-count="START">3<', page.text)
    assert re.search(r'data-count="DONE">1<', page.text)
    assert re.search(r'id="ended">2<', page.text), "done and failed ended"
    assert f'/jobs/{sweep.waiting[0]}">{sweep.waiting[0]}</a>, added' in page.text
    assert "dbdict-1@node1" in page.text, "the worker that ran them was seen"


def test_the_grid_filters_and_sorts_as_the_command_line_does(
    client: TestClient, table: str
) -> None:
    page = client.get(f"{table}/jobs", params={"where": "lr>0.25", "sort": "-lr"})
    assert page.status_code == 200
    shown = re.findall(r">(0\.[1-6])<", page.text)
    assert shown == ["0.6", "0.5", "0.4", "0.3"]
    failed = client.get(f"{table}/jobs", params={"status": "failed"})
    assert re.findall(r'data-field="status">(\w+)<', failed.text) == ["FAILED"]


def test_the_grid_pages_and_shows_the_chosen_columns(client: TestClient, table: str) -> None:
    first = client.get(f"{table}/jobs", params={"size": "25", "columns": "id,lr"})
    assert re.findall(r'<th><a href="[^"]*">([\w.]+)', first.text) == ["id", "lr"]
    page = client.get(f"{table}/jobs", params={"size": "25", "page": "2"})
    assert page.status_code == 200
    assert "No job matches." in page.text, "six jobs fit on the first page"


def test_a_malformed_filter_is_a_400_with_one_line(client: TestClient, table: str) -> None:
    page = client.get(f"{table}/jobs", params={"where": "lr~1"})
    assert page.status_code == 400
    assert '<p class="error">malformed filter &#39;lr~1&#39;: expected KEY OP VALUE' in page.text
    news = client.get(f"{table}/news.json", params={"id": "x"})
    assert news.status_code == 400
    assert news.json() == {"error": "not a job id: 'x'"}


def test_an_unknown_job_or_table_is_a_404(client: TestClient, table: str) -> None:
    assert client.get(f"{table}/jobs/999").status_code == 404
    assert client.get(f"{table}/jobs/999/news.json").json()["error"].startswith("no job 999")
    assert client.get("/tables/no_such_table").status_code == 404
    assert client.get("/tables/bad-name!").status_code == 400


def test_a_job_page_shows_its_runs_output_and_curve(
    client: TestClient, sweep: Sweep, table: str
) -> None:
    page = client.get(f"{table}/jobs/{sweep.done}")
    assert page.status_code == 200
    assert "ValueError" not in page.text
    assert "dbdict-1@node1" in page.text
    assert ">done<" in page.text
    assert "epoch 299" in page.text
    assert "epoch 0\n" not in page.text, "only the tail of the output"
    path = re.search(r'<path class="series" d="([^"]+)"', page.text)
    assert path is not None
    assert path.group(1).count("L") == STEPS - 1
    failed = client.get(f"{table}/jobs/{sweep.failed}")
    assert "ValueError: lr" in failed.text
    assert ">failed<" in failed.text


def test_news_follow_a_status_change(
    client: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    news = client.get(f"{table}/news.json", params={"id": [str(sweep.running)]}).json()
    assert news["jobs"] == {str(sweep.running): {"status": "RUNNING", "attempts": 1}}
    store.cancel([sweep.waiting[0]])
    after = client.get(f"{table}/news.json").json()
    assert after["counts"][Status.CANCELLED.name] == 1
    assert after["total"] == 6
    job = client.get(f"{table}/jobs/{sweep.done}/news.json").json()
    assert job["status"] == "DONE"
    assert job["curves"] == {"loss": STEPS - 1}


def test_jobs_compare_by_what_differs_and_their_curves_overlaid(
    client: TestClient, sweep: Sweep, table: str
) -> None:
    page = client.get(f"{table}/compare", params={"id": [str(sweep.done), str(sweep.failed)]})
    assert page.status_code == 200
    assert re.search(r"<td>parameter</td><td>lr</td><td>0.1</td><td>0.2</td>", page.text)
    assert page.text.count('<path class="series"') == 2
    alone = client.get(f"{table}/compare", params={"id": str(sweep.done)})
    assert alone.status_code == 400


def test_values_are_escaped(client: TestClient, store: JobStore, table: str) -> None:
    from dbdict_celery.store.job import NewJob

    (inserted,) = next(store.insert([NewJob("x.y", {"name": "<script>alert(1)</script>"})]))
    page = client.get(f"{table}/jobs/{inserted.id}")
    assert "<script>alert(1)" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text


def test_a_study_page_draws_the_best_so_far_against_trials(
    client: TestClient, store: JobStore, table: str, tmp_path: Path
) -> None:
    trials = fill_study(store, tmp_path / "exproot")
    overview = client.get(table)
    assert f"/studies/{STUDY}" in overview.text
    page = client.get(f"{table}/studies/{STUDY}")
    assert page.status_code == 200
    assert f"{TRIALS} of {TRIALS} (complete)" in page.text
    assert page.text.count("<circle") == TRIALS
    best = re.search(r'<path class="series" d="([^"]+)"[^>]*data-name="best so far"', page.text)
    assert best is not None
    assert best.group(1).count("L") == TRIALS - 1
    assert f'/jobs/{trials[-1]}">{trials[-1]}</a>' in page.text, "the best trial is listed"
    assert client.get(f"{table}/studies/nope").status_code == 400


def test_prometheus_scrapes_the_tables_at_metrics(client: TestClient, store: JobStore) -> None:
    scrape = client.get("/metrics", follow_redirects=False)
    assert scrape.status_code == 200
    assert f'table="{store.path.table}"' in scrape.text


def test_the_grid_groups_as_list_group_by_does(
    client: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    page = client.get(f"{table}/jobs", params={"group_by": "status", "agg": "max,count:loss"})
    assert page.status_code == 200
    group_row = r'<tr>\s*<td>(\w+)</td>\s*<td class="number"><a href="\?([^"]+)">(\d)</a>'
    rows = re.findall(group_row, page.text)
    assert [(status, int(jobs)) for status, _, jobs in rows] == [
        ("START", 3), ("RUNNING", 1), ("DONE", 1), ("FAILED", 1)
    ], "in the order of the statuses' values"  # fmt: skip
    assert "0.125" in page.text, "the DONE job's loss is the max of its group"
    done_link = next(query for status, query, _ in rows if status == "DONE")
    group = client.get(f"{table}/jobs?{done_link.replace('&amp;', '&')}")
    assert re.findall(r'data-field="status">(\w+)<', group.text) == ["DONE"]
    missing = client.get(f"{table}/jobs", params={"group_by": "nothere"})
    assert '<td class="number">6</td>' in missing.text, "no filter says 'has no such key'"
    bad = client.get(f"{table}/jobs", params={"group_by": "status", "agg": "median:loss"})
    assert bad.status_code == 400


def test_a_job_page_shows_its_tags_and_note(
    client: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    store.tag([sweep.done], add=["baseline", "v2"])
    store.annotate(sweep.done, "<b>best</b> so far")
    page = client.get(f"{table}/jobs/{sweep.done}")
    assert all(f">{tag}</a>" in page.text for tag in ("baseline", "v2"))
    assert "&lt;b&gt;best&lt;/b&gt; so far" in page.text, "escaped"
    tagged = client.get(f"{table}/jobs", params={"where": "tag=baseline"})
    assert re.findall(r'data-field="status">(\w+)<', tagged.text) == ["DONE"]


def test_a_job_page_reads_only_the_tail_of_its_output(store: JobStore, sweep: Sweep) -> None:
    """A log of gigabytes must not be read whole to show its last lines."""
    job = store.get(sweep.done)
    where, everything = read_log(store, job)
    assert everything.endswith(b"epoch 299\n")
    _, tail = read_log(store, job, last=10)
    assert tail == everything[-10:]
    _, short = read_log(store, job, last=10**9)
    assert short == everything
    assert Path(where).stat().st_size == len(everything)


def test_a_study_page_says_which_parameters_mattered(
    client: TestClient, store: JobStore, table: str
) -> None:
    """The loss depends on x alone: Optuna's importances put x far above y."""
    definition = Definition(
        "tests.experiments.bowl", ("x=uniform(0, 1)", "y=uniform(0, 1)"), "loss:min", 30,
        name="two-params",
    )  # fmt: skip
    store.define_study("two-params", definition.record())
    draw = random.Random(1)  # noqa: S311 (x and y drawn apart: neither stands for the other)
    points = [(draw.random(), draw.random()) for _ in range(30)]
    new = [NewJob(definition.experiment, {"x": x, "y": y}, study="two-params", trial=n)
           for n, (x, y) in enumerate(points)]  # fmt: skip
    for row in [each for batch in store.insert(new) for each in batch]:
        job = store.book(row.id)
        assert job is not None
        store.finish(job, Status.DONE, {**job.params, "loss": (job.params["x"] - 0.3) ** 2})
    page = client.get(f"{table}/studies/two-params")
    assert page.status_code == 200, page.text
    importances = re.findall(r"<tr><th>(\w)</th><td class=\"number\">([\d.]+)</td>", page.text)
    assert [name for name, _ in importances] == ["x", "y"], "most important first"
    assert float(importances[0][1]) > 0.8


def test_a_table_that_cannot_be_opened_hides_no_other(
    client: TestClient, store: JobStore, sweep: Sweep, table: str
) -> None:
    """A table dropped by hand keeps its row in dbdict_schema: the start page says so for
    it, and lists the others."""
    with store.engine.begin() as connection:
        connection.execute(
            text("INSERT INTO dbdict_schema (table_name, version) VALUES ('dropped_by_hand', 7)")
        )
    page = client.get("/")
    assert page.status_code == 200, page.text
    assert f'href="{LOCAL}{table}"' in page.text
    assert "dropped_by_hand" in page.text
