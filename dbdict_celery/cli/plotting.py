"""`dbdict plot`: a sweep's result against a parameter, its jobs' learning curves, or when each
run ran, as an image."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import click

import dbdict_celery as api
from dbdict_celery.cli import figures
from dbdict_celery.cli.curves_figure import BEST, curves_plot
from dbdict_celery.cli.options import chosen_statuses, db_options, status_option, where_option
from dbdict_celery.errors import UsageError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from dbdict_celery.store.job import Job
    from dbdict_celery.store.store import JobStore


@click.command("plot")
@db_options
@status_option
@where_option
@click.option("--x", "x", metavar="KEY", help="The parameter on the horizontal axis: lr.")
@click.option("--y", "y", metavar="KEY", help="The result on the vertical axis: accuracy.")
@click.option("--hue", metavar="KEY", help="One colour per value of this key: model (with "
              "--curves, a colormap when its values are numbers).")  # fmt: skip
@click.option("--timeline", is_flag=True, help="Draw when each run ran, on which worker.")
@click.option("--curves", metavar="KEY", help="Draw each job's reported curve of KEY by step "
              "(channel.report): loss.")  # fmt: skip
@click.option("--log-y", is_flag=True, help="With --curves: a log value axis.")
@click.option("--aggregate", is_flag=True, help="With --curves: the mean and ± 1 std of the "
              "jobs of each --hue value, step by step, instead of a line per job.")  # fmt: skip
@click.option(
    "--best",
    type=click.Choice(BEST),
    help="With --curves: the job drawn on top is the one whose last value is lowest (min, "
    "the default) or highest (max).",
)
@click.option("--optimization", metavar="NAME", help="Draw how study NAME's best value went, "
              "by trial and by time, and its parameters' importances.")  # fmt: skip
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
    curves: str | None,
    log_y: bool,
    aggregate: bool,
    best: str | None,
    optimization: str | None,
    output: str | None,
) -> None:
    """Draw a result against a parameter for the jobs of a table, their learning curves, or
    a timeline of their runs.

    A log axis is used when the values span two decades or more; each job is a
    marker shaped by its status, and a line joins the mean of the DONE jobs at
    each value (over seeds, say). With --curves, each job is a line of the
    values it reported by step (fainter as jobs grow; a NaN breaks it,
    infinities are left out), and the best job by its last value is drawn on
    top and named. Needs matplotlib: pip install 'dbdict-celery[plot]'.

    \b
    Examples:
        dbdict plot --x lr --y accuracy --hue alpha -o sweep.png
        dbdict plot --curves loss --hue lr --log-y -o curves.png
        dbdict plot --curves accuracy --hue model --aggregate --best max
        dbdict plot --timeline -o runs.svg
        dbdict plot --optimization quadratic-1a2b3c4d
    """
    if curves is None and (log_y or aggregate or best):
        raise UsageError("--log-y, --aggregate and --best go with --curves KEY")
    if timeline and (x or y or hue or curves):
        raise UsageError("--timeline draws runs over time: it takes no --x, --y, --hue or --curves")
    if curves is not None and (x or y):
        raise UsageError("--curves draws KEY by step: it takes no --x or --y")
    if optimization is not None and (timeline or x or y or hue or curves or statuses or filters):
        raise UsageError("--optimization draws a study: it takes no other choice of jobs")
    store = api.JobStore.open(db, table, create=False)
    name = store.path.table
    jobs = [] if optimization else store.jobs(chosen_statuses(statuses), filters)
    if optimization is not None:
        from dbdict_celery.cli.optimization_figure import optimization_plot

        figure = optimization_plot(store, api.study_status(store, optimization).definition)
        default = f"{name}_{optimization}"
    elif timeline:
        figure = figures.timeline(jobs, store.attempts_of([job.id for job in jobs]), name)
        default = f"{name}_timeline"
    elif curves is not None:
        figure = _curves(store, jobs, curves, hue, log_y, aggregate, best or "min")
        default = f"{name}_{curves}_curves"
    else:
        if not x or not y:
            raise UsageError("give --x KEY and --y KEY (or --curves KEY, or --timeline)")
        figure = figures.sweep(jobs, x, y, hue, name)
        default = f"{name}_{y}_by_{x}"
    output = output or re.sub(r"[^\w.-]", "_", default) + ".png"
    figures.save(figure, output)
    click.echo(f"wrote {output}", err=True)


def _curves(
    store: JobStore,
    jobs: list[Job],
    key: str,
    hue: str | None,
    log_y: bool,
    aggregate: bool,
    best: str,
) -> Figure:
    """The curves figure, its points read in one query per many thousand jobs; what it left
    out and its best job told on stderr."""
    points = store.curve_columns(key, [job.id for job in jobs])
    drawn = curves_plot(jobs, points, key, store.path.table, hue, log_y, aggregate, best)
    for note in drawn.notes:
        click.echo(note, err=True)
    if drawn.best is not None:
        chosen = drawn.best
        last = f"{float(chosen.values[-1]):.6g} at step {int(chosen.steps[-1])}"
        click.echo(f"best ({best} last {key}): job {chosen.job.id}, {last}", err=True)
    return drawn.figure
