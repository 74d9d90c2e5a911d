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

    An experiment is a Python function experiment(state, channel). Run
    'dbdict help' for the topics (experiment, parameters, example).
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
