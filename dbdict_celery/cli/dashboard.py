"""`dbdict dashboard`: a live web view of the job tables of a database, read-only."""

from __future__ import annotations

import click

from dbdict_celery.cli.options import db_options
from dbdict_celery.web.address import Address
from dbdict_celery.web.auth import Credentials
from dbdict_celery.web.serve import DEFAULT_BIND, check_exposure, serve

AUTH_VARIABLE = "DBDICT_DASHBOARD_AUTH"


@click.command("dashboard")
@db_options
@click.option(
    "--bind",
    default=DEFAULT_BIND,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen. Beyond loopback, --basic-auth is required.",
)
@click.option(
    "--basic-auth",
    "auth",
    envvar=AUTH_VARIABLE,
    metavar="USER:PASSWORD",
    help=f"Ask every request for this user and password (default ${AUTH_VARIABLE}, which "
    "keeps the password out of the process list).",
)
@click.option(
    "--allow-actions",
    is_flag=True,
    help="Add cancel, requeue and priority buttons to job pages (needs --basic-auth).",
)
def dashboard_command(
    db: str | None, table: str | None, bind: str, auth: str | None, allow_actions: bool
) -> None:
    """Serve a dashboard of the database's job tables: counts, progress and workers, the
    jobs filtered and sorted as 'dbdict list' does, each job with its runs, output and
    curves, updated live. It only reads, unless --allow-actions."""
    address = Address.parse(bind)
    credentials = Credentials.parse(auth) if auth else None
    check_exposure(address, credentials, allow_actions)  # before saying where it listens
    click.echo(f"dashboard on http://{address}/ (Ctrl-C to stop)", err=True)
    serve(db, table, address, credentials, allow_actions)
