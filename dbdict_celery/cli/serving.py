"""`dbdict metrics-server`: the Prometheus endpoint alone, for deployments without the
dashboard (which serves the same metrics at its own `/metrics`)."""

from __future__ import annotations

import click

from dbdict_celery.config import table_path

DEFAULT_BIND = "127.0.0.1:9808"


@click.command("metrics-server")
@click.option(
    "--db",
    "locations",
    multiple=True,
    metavar="TABLEPATH",
    help="A job table to count (repeatable; default: $DBDICT_DB, else the embedded one).",
)
@click.option("--table", metavar="NAME", help="The table, when a path does not name one.")
@click.option(
    "--bind",
    default=DEFAULT_BIND,
    show_default=True,
    metavar="HOST:PORT",
    help="Where to listen (0.0.0.0:9808 for every interface: the metrics hold no secret).",
)
def metrics_server_command(locations: tuple[str, ...], table: str | None, bind: str) -> None:
    """Serve Prometheus metrics of job tables at http://HOST:PORT/metrics.

    dbdict_jobs{status,queue}, dbdict_oldest_waiting_seconds{queue},
    dbdict_running_jobs{host}, dbdict_attempts_total{outcome} and
    dbdict_reconcile_repairs_total, each labelled with the table's database and
    name, counted from the table at every scrape.
    """
    from dbdict_celery.web.address import Address
    from dbdict_celery.web.metrics import metrics_app
    from dbdict_celery.web.serve import run

    address = Address.parse(bind)
    paths = [table_path(location, table) for location in locations or (None,)]
    shown = ", ".join(map(str, paths))  # passwords masked
    click.echo(f"dbdict: serving the metrics of {shown} at http://{address}/metrics")
    run(metrics_app(paths), address)
