"""The dashboard's endpoints: each reads through the store, then renders a template or
JSON. Plain functions: Starlette runs them in its thread pool, so a slow query holds up
no other request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.templating import Jinja2Templates

from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.store import JobStore
from dbdict_celery.web.actions import Actions, act
from dbdict_celery.web.catalog import Catalog
from dbdict_celery.web.comparison import job_comparison
from dbdict_celery.web.grid import PAGE_SIZES, GridQuery, grid_page
from dbdict_celery.web.job_page import job_detail
from dbdict_celery.web.live import job_ids, job_news, table_news
from dbdict_celery.web.study_page import study_detail
from dbdict_celery.web.sweep_curves import sweep_curves

POLL_SECONDS = 1.5  # how often an open page asks for news


def catalog_of(request: Request) -> Catalog:
    """The catalog of the app serving `request`."""
    found: Catalog = request.app.state.catalog
    return found


def _render(request: Request, template: str, **context: Any) -> HTMLResponse:
    templates: Jinja2Templates = request.app.state.templates
    catalog = catalog_of(request)
    context.update(
        database=catalog.database, poll_seconds=POLL_SECONDS, actions=request.app.state.actions
    )
    return templates.TemplateResponse(request, template, context)


def _store(request: Request) -> JobStore:
    return catalog_of(request).store(request.path_params["table"])


def tables_page(request: Request) -> Response:
    """The job tables of the database, each with its counts by status, or why it cannot be
    read (one table dropped by hand, or made by a newer release, hides no other)."""
    catalog = catalog_of(request)
    counts: dict[str, dict[Status, int] | str] = {}
    for name in catalog.tables():
        try:
            counts[name] = catalog.store(name).counts()
        except DbdictError as error:
            counts[name] = str(error).splitlines()[0]
    return _render(request, "tables.html", counts=counts, named=catalog.path.table)


def overview_page(request: Request) -> Response:
    store = _store(request)
    return _render(
        request,
        "overview.html",
        table=store.path.table,
        overview=store.overview(),
        studies=store.study_names(),
    )


def grid_view(request: Request) -> Response:
    store = _store(request)
    query = GridQuery.parse(request.query_params)
    return _render(
        request,
        "grid.html",
        table=store.path.table,
        page=grid_page(store, query),
        page_sizes=PAGE_SIZES,
    )


def curves_view(request: Request) -> Response:
    """One key's curves of the jobs the grid's filters choose, coloured by a parameter."""
    store = _store(request)
    params = request.query_params
    curves = sweep_curves(
        store, GridQuery.parse(params), params.get("key") or None, params.get("hue") or None
    )
    return _render(request, "curves.html", table=store.path.table, curves=curves)


def job_view(request: Request) -> Response:
    store = _store(request)
    job_id = request.path_params["job_id"]
    news = job_news(store, job_id)  # read first: a change after it swaps the page once more
    detail = job_detail(store, job_id)
    said = request.query_params.get("said", "")
    return _render(request, "job.html", table=store.path.table, detail=detail, news=news, said=said)


async def action_view(request: Request) -> Response:
    """A button of a job's page: take its action, then show the page again, saying what
    happened."""
    actions: Actions | None = request.app.state.actions
    if actions is None:
        return PlainTextResponse("this dashboard was started without --allow-actions\n", 404)
    form = await request.form()
    actions.check(request, str(form.get("token", "")))
    store = _store(request)
    job_id = request.path_params["job_id"]
    action, priority = str(form.get("action", "")), form.get("priority")
    said = await run_in_threadpool(
        act, store, job_id, action, None if priority is None else str(priority)
    )
    page = request.url_for("job", table=store.path.table, job_id=job_id)
    return RedirectResponse(f"{page}?{urlencode({'said': said})}", status_code=303)


def compare_view(request: Request) -> Response:
    store = _store(request)
    ids = job_ids(request.query_params.getlist("id"))
    comparison = job_comparison(store, ids, request.query_params.get("key"))
    return _render(request, "compare.html", table=store.path.table, comparison=comparison)


def study_view(request: Request) -> Response:
    store = _store(request)
    detail = study_detail(store, request.path_params["study"])
    return _render(request, "study.html", table=store.path.table, detail=detail)


def table_news_json(request: Request) -> Response:
    news = table_news(_store(request), job_ids(request.query_params.getlist("id")))
    return JSONResponse(news)


def job_news_json(request: Request) -> Response:
    return JSONResponse(job_news(_store(request), request.path_params["job_id"]))
