"""The dashboard as an ASGI app: `dashboard_app(location)` serves every job table of one
database, read-only.

Pages are rendered here, from Jinja templates with autoescaping on (a parameter holding
`<script>` shows as text); the few lines of JavaScript and the stylesheet are files of
this package, so the dashboard works on a machine without internet access. An error
dbdict raises on purpose is one line, as on the command line: a mistake in the query
(a malformed `where`) is a 400, a job or table that is not there a 404, a database out
of reach a 503. Prometheus scrapes `/metrics` (`metrics.py`), behind the same
authentication.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import jinja2
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from dbdict_celery.errors import DbdictError, JobNotFound, TableMissing, UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.web import pages
from dbdict_celery.web.actions import Actions, Forbidden, check_actions
from dbdict_celery.web.auth import BasicAuth, Credentials
from dbdict_celery.web.catalog import Catalog
from dbdict_celery.web.formatting import FILTERS
from dbdict_celery.web.metrics import metrics_registry, metrics_response

HERE = Path(__file__).parent
LOOPBACK_NAMES = ["127.0.0.1", "localhost"]
TABLE = "/tables/{table}"
JOB = TABLE + "/jobs/{job_id:int}"


def dashboard_app(
    location: str | None,
    table: str | None = None,
    credentials: Credentials | None = None,
    allow_actions: bool = False,
) -> Starlette:
    """The dashboard of the database at `location` (a table path as `--db` takes it: None is
    DBDICT_DB, else the embedded database; `table`, or the one the path names, is listed
    first); behind basic authentication when `credentials` are given; with the cancel,
    requeue and priority buttons (`actions.py`) if `allow_actions`, which needs them."""
    check_actions(allow_actions, credentials is not None)
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(FILTERS)
    environment.globals.update(statuses=list(Status), zip=zip)
    middleware = (
        [Middleware(BasicAuth, credentials=credentials)]
        if credentials
        # no password, so on loopback: a page of another site whose name it rebinds to
        # 127.0.0.1 would read every table; only requests naming loopback are answered
        else [Middleware(TrustedHostMiddleware, allowed_hosts=LOOPBACK_NAMES)]
    )
    catalog = Catalog(location, table)
    app = Starlette(
        routes=_routes(catalog),
        middleware=middleware,
        exception_handlers={DbdictError: _error, Forbidden: _forbidden},
    )
    app.state.catalog = catalog
    app.state.actions = Actions.made() if allow_actions else None
    app.state.templates = Jinja2Templates(env=environment)
    return app


def _routes(catalog: Catalog) -> list[BaseRoute]:
    """The pages, their JSON, the static files, and the tables' Prometheus metrics (those of
    the tables there when the app starts)."""
    return [
        Route("/", pages.tables_page, name="tables"),
        Route(TABLE, pages.overview_page, name="overview"),
        Route(TABLE + "/news.json", pages.table_news_json, name="table_news"),
        Route(TABLE + "/jobs", pages.grid_view, name="grid"),
        Route(TABLE + "/curves", pages.curves_view, name="curves"),
        Route(JOB, pages.job_view, name="job"),
        Route(JOB + "/news.json", pages.job_news_json, name="job_news"),
        Route(JOB + "/action", pages.action_view, methods=["POST"], name="action"),
        Route(TABLE + "/compare", pages.compare_view, name="compare"),
        Route(TABLE + "/studies/{study}", pages.study_view, name="study"),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/metrics", _metrics(catalog), name="metrics"),
    ]


def _metrics(catalog: Catalog) -> Callable[[Request], Awaitable[Response]]:
    """`/metrics` itself (no redirect to `/metrics/`): the census of the tables there when
    the app starts."""
    registry = metrics_registry(catalog.paths())

    async def endpoint(request: Request) -> Response:
        return await metrics_response(registry)

    return endpoint


def _forbidden(request: Request, error: Exception) -> Response:
    return PlainTextResponse(f"{error}\n", status_code=403)


def _error(request: Request, error: Exception) -> Response:
    """A dbdict error as one line: JSON for the JSON endpoints, plain text for pages."""
    assert isinstance(error, DbdictError)
    if isinstance(error, (JobNotFound, TableMissing)):
        code = 404
    elif isinstance(error, UsageError):
        code = 400
    else:
        code = 503
    message = str(error).splitlines()[0] if str(error) else type(error).__name__
    if request.url.path.endswith(".json"):
        return JSONResponse({"error": message}, status_code=code)
    templates: Jinja2Templates = request.app.state.templates
    context = {"message": message, "code": code, "database": request.app.state.catalog.database}
    return templates.TemplateResponse(request, "error.html", context, status_code=code)
