"""`dbdict plot`: a sweep's result against a parameter, or when each run ran, as an image."""

from __future__ import annotations

import re

import click

import dbdict_celery as api
from dbdict_celery.cli import figures
from dbdict_celery.cli.options import chosen_statuses, db_options, status_option, where_option
from dbdict_celery.errors import UsageError


@click.command("plot")
@db_options
@status_option
@where_option
@click.option("--x", "x", metavar="KEY", help="The parameter on the horizontal axis: lr.")
@click.option("--y", "y", metavar="KEY", help="The result on the vertical axis: accuracy.")
@click.option("--hue", metavar="KEY", help="One colour per value of this key: model.")
@click.option("--timeline", is_flag=True, help="Draw when each run ran, on which worker.")
@click.option("-o", "--output", metavar="FILE", help="A .png, .svg or .pdf (default: named "
              "after the table and the keys, in this directory).")  # fmt: skip
def plot_command(
    db: str | None,
    table: str | None,
    statuses: tuple[str, ...],
    filters: tuple[str, ...],
    x: str | None,
    y: str | None,
    hue: str | None,
    timeline: bool,
    output: str | None,
) -> None:
    """Draw a result against a parameter for the jobs of a table, or a timeline of its runs.

    A log axis is used when the values span two decades or more; each job is a
    marker shaped by its status, and a line joins the mean of the DONE jobs at
    each value (over seeds, say). Needs matplotlib: pip install 'dbdict-celery[plot]'.

    \b
    Examples:
        dbdict plot --x lr --y accuracy --hue alpha -o sweep.png
        dbdict plot --timeline -o runs.svg
    """
    store = api.JobStore.open(db, table, create=False)
    jobs = store.jobs(chosen_statuses(statuses), filters)
    name = store.path.table
    if timeline:
        if x or y or hue:
            raise UsageError("--timeline draws runs over time: it takes no --x, --y or --hue")
        figure = figures.timeline(jobs, store.attempts_of([job.id for job in jobs]), name)
        output = output or f"{name}_timeline.png"
    else:
        if not x or not y:
            raise UsageError("give --x KEY and --y KEY (or --timeline)")
        figure = figures.sweep(jobs, x, y, hue, name)
        output = output or re.sub(r"[^\w.-]", "_", f"{name}_{y}_by_{x}") + ".png"
    figures.save(figure, output)
    click.echo(f"wrote {output}", err=True)
