"""Adaptive search over the job table: `dbdict optimize`."""

from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any

import click
from rich.console import Console
from rich.progress import TimeElapsedColumn

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, limit_options
from dbdict_celery.cli.output import print_json, progress_bar, rich_table
from dbdict_celery.config import drive_interval
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.search.methods import PRUNERS, SAMPLERS
from dbdict_celery.store.job import DEFAULT_PRIORITY, value_of

if TYPE_CHECKING:
    from dbdict_celery.search.driver import Driver
    from dbdict_celery.search.results import StudyStatus


@click.command("optimize")
@click.argument("args", nargs=-1, metavar="EXPERIMENT [PARAMS]...")
@db_options
@click.option("--objective", metavar="KEY:min|max[,...]", help="What to optimize: a key of "
              "each trial's final state, e.g. loss:min; several, comma-separated, for a Pareto "
              "front (with --sampler nsga2).")  # fmt: skip
@click.option("--trials", type=int, metavar="N", help="How many trials the study has in all.")
@click.option("--parallel", type=int, default=1, show_default=True, metavar="N",
              help="How many trials may be waiting or running at once.")  # fmt: skip
@click.option("--sampler", type=click.Choice(SAMPLERS), default="tpe", show_default=True)
@click.option("--pruner", type=click.Choice(PRUNERS), default="none", show_default=True,
              help="Stop trials whose reported curve falls behind (they end PRUNED).")  # fmt: skip
@click.option("--prune-on", metavar="KEY",
              help="The reported key the pruner watches (default: the objective's).")  # fmt: skip
@click.option("--study", metavar="NAME", help="The study's name (default: one derived from "
              "the command, so running it again continues the same study).")  # fmt: skip
@click.option(
    "--seed", type=int, help="The sampler's seed (default: drawn, and kept with the study)."
)
@click.option("--enqueue", "configurations", multiple=True, metavar="'K=V ...'",
              help="A configuration to run before the sampler's (repeatable).")  # fmt: skip
@click.option("--priority", type=float, default=DEFAULT_PRIORITY, show_default=True)
@click.option("--exproot", metavar="PATH", help="Where the trials keep their files.")
@click.option("--queue", metavar="NAME", help="The Celery queue the trials are sent to.")
@limit_options
@click.option("--detach", is_flag=True, help="Add the first trials and return: the workers "
              "drive the study (run `celery -A dbdict_celery beat`); run the command again "
              "without --detach to drive it from here.")  # fmt: skip
@click.option("--status", "status_of", metavar="NAME", help="Show where study NAME stands.")
@click.option("--best", "best_of", metavar="NAME", help="Show the best trials of study NAME.")
@click.option("--json", "as_json", is_flag=True, help="With --status or --best: JSON.")
def optimize_command(
    args: tuple[str, ...],
    db: str | None,
    table: str | None,
    objective: str | None,
    trials: int | None,
    parallel: int,
    sampler: str,
    pruner: str,
    prune_on: str | None,
    study: str | None,
    seed: int | None,
    configurations: tuple[str, ...],
    priority: float,
    exproot: str | None,
    queue: str | None,
    limits: api.Limits,
    detach: bool,
    status_of: str | None,
    best_of: str | None,
    as_json: bool,
) -> None:
    """Search the parameters of an experiment with Optuna, each trial a job of the table.

    PARAMS are schedule's: choice(...) and range(...) are searched as categories and integer
    ranges, uniform(a, b), loguniform(a, b) and randint(a, b) as number ranges, the rest
    are fixed. The command keeps --parallel trials waiting or running (run workers to run
    them), tells the sampler each result, and returns once --trials trials have ended.
    Stopped (Ctrl-C, or killed), it leaves its trials to run; run it again and it
    continues the study from the table. With --detach, Celery beat's workers drive it.

    \b
    Example:
        dbdict optimize examples.quadratic.experiment 'lr=loguniform(1e-3, 0.9)' \\
            epochs=20 --objective loss:min --trials 30 --parallel 4 --pruner median
    """
    if status_of or best_of:
        store = api.JobStore.open(db, table, create=False)
        shown = api.study_status(store, status_of or best_of or "", best=5 if status_of else 20)
        _show(shown, as_json, best_only=best_of is not None)
        return
    if not args:
        raise UsageError("give the EXPERIMENT to optimize (or --status NAME, --best NAME)")
    if objective is None or trials is None:
        raise UsageError("give --objective KEY:min|max and --trials N")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # its study is ours, in memory
    store = api.JobStore.open(db, table)
    optimization = api.optimize(store, args[0], args[1:], objective, trials, parallel, sampler,
                                pruner, study, seed, prune_on, configurations, priority,
                                exproot, queue, detach, limits)  # fmt: skip
    if detach:
        optimization.finished(timeout=None)
        asked = len(optimization.progress().asked)
        click.echo(f"study {optimization.name} detached with {asked} new trials sent: Celery "
                   f"beat (celery -A dbdict_celery beat) with DBDICT_DB={store.path} drives "
                   f"it every {drive_interval():g} s; see dbdict optimize --status "
                   f"{optimization.name}", err=True)  # fmt: skip
        return
    _follow(optimization)
    _show(optimization.status(), as_json=False, best_only=False)


def _follow(optimization: api.Optimization) -> None:
    """Show the study's progress until it completes; Ctrl-C stops the driver only."""
    driver = optimization.driver
    progress = driver.progress
    name = driver.definition.name
    if progress.warm_started:
        click.echo(f"told the sampler {progress.warm_started} earlier DONE jobs first", err=True)
    if progress.resumed:
        click.echo(f"study {name}: {progress.resumed} trials already in the table", err=True)
    else:
        click.echo(f"study {name} started (run it again to continue it)", err=True)
    interrupted = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: interrupted.set())
    try:
        with progress_bar(TimeElapsedColumn()) as bar:
            task = bar.add_task(f"study {name}", total=driver.definition.trials)
            while not optimization.finished(0.5):
                if interrupted.is_set():
                    optimization.stop()
                    click.echo(f"stopped driving {name}: its trials run on; run the same "
                               "command again to continue", err=True)  # fmt: skip
                    raise SystemExit(130)
                bar.update(task, completed=driver.ended, description=_line(driver))
    finally:
        signal.signal(signal.SIGINT, previous)
    optimization.wait()


def _line(driver: Driver) -> str:
    try:
        best = driver.study.best_value if not driver.definition.goal.multi else None
    except ValueError:  # nothing complete yet
        best = None
    return f"study {driver.definition.name}" + (f" · best {best:.6g}" if best is not None else "")


def _show(shown: StudyStatus, as_json: bool, best_only: bool) -> None:
    definition = shown.definition
    keys = [*definition.space.distributions, *definition.goal.keys]
    if as_json:
        data: dict[str, Any] = {
            "study": definition.name,
            "experiment": definition.experiment,
            "objective": definition.objective,
            "trials": definition.trials,
            "counts": {status.name: shown.counts.get(status, 0) for status in Status},
            "complete": shown.complete,
            "best": [
                {"id": job.id, "trial": job.trial, **{k: value_of(job, k) for k in keys}}
                for job in shown.best
            ],
        }
        print_json({"best": data["best"]} if best_only else data)
        return
    console = Console()
    if not best_only:
        counts = ", ".join(
            f"{shown.counts[status]} {status.name}" for status in Status if shown.counts.get(status)
        )
        state = "complete" if shown.complete else "going on"
        console.print(f"study {definition.name} ({definition.experiment}, {definition.objective}, "
                      f"{definition.sampler}, pruner {definition.pruner}): {shown.trials} of "
                      f"{definition.trials} trials, {counts or 'none yet'}; {state}")  # fmt: skip
    title = "Pareto front" if definition.goal.multi else "best trials"
    rows = [[job.id, job.trial, *(value_of(job, key) for key in keys)] for job in shown.best]
    console.print(rich_table(title, ["id", "trial", *keys], rows))
