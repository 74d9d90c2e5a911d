"""The `dbdict` command group, and the options several commands share."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

console = Console(stderr=True)

ALIASES = {"cmdline": "run", "sqlschedule": "schedule"}


class DbdictGroup(click.Group):
    """A command group that knows the original command names as aliases."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, ALIASES.get(cmd_name, cmd_name))


@click.group(cls=DbdictGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """dbdict: run experiments, checkpoint them, stop and resume them.

    An experiment is a Python function experiment(state, channel). Run one
    here with 'dbdict run', or schedule sweeps into a job table with
    'dbdict schedule' and run them with 'dbdict worker' (Celery) on any
    number of machines. Run 'dbdict help' for the topics (experiment,
    parameters, example).
    """


def db_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--db and --table: which job table a command works on."""
    command = click.option(
        "--table", metavar="NAME", help="The table, when the path does not name one (default jobs)."
    )(command)
    return click.option(
        "--db",
        metavar="TABLEPATH",
        help="postgresql://user@host/db/table or sqlite:///path/jobs.db/table "
        "(default: $DBDICT_DB, else the embedded database in $DBDICT_HOME).",
    )(command)


def where_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--where EXPR, repeatable: conditions on the flattened state."""
    return click.option(
        "--where",
        "filters",
        multiple=True,
        metavar="EXPR",
        help="A condition on a parameter or result: lr>0.01, model.kind=cnn "
        "(repeatable; all must hold).",
    )(command)


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--json: data for scripts instead of tables for people."""
    return click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")(command)


def stale_after_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--stale-after SECONDS, with the default of DBDICT_STALE_AFTER."""
    return click.option(
        "--stale-after",
        type=click.FloatRange(min=0, min_open=True),
        metavar="SECONDS",
        help=f"{what} (default $DBDICT_STALE_AFTER, 300).",
    )
