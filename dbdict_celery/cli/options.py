"""The options several commands share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status

STATUS = click.Choice([status.name.lower() for status in Status], case_sensitive=False)


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
    """--where EXPR, repeatable: conditions on the flattened state; and --experiment NAME,
    which is `--where experiment=NAME`. The command receives them all as `filters`."""

    @functools.wraps(command)
    def with_experiment(*args: Any, experiment: str | None, filters: tuple[str, ...],
                        **kwargs: Any) -> Any:  # fmt: skip
        if experiment is not None:
            filters = (*filters, f"experiment={experiment!r}")
        return command(*args, filters=filters, **kwargs)

    with_experiment = click.option(
        "--experiment",
        metavar="NAME",
        help="Only the jobs of this experiment: my_module.experiment.",
    )(with_experiment)
    return click.option(
        "--where",
        "filters",
        multiple=True,
        metavar="EXPR",
        help="A condition on a parameter or result: lr>0.01, model.kind=cnn "
        "(repeatable; all must hold).",
    )(with_experiment)


def status_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """--status S, repeatable: only jobs in these statuses."""
    return click.option(
        "--status", "statuses", type=STATUS, multiple=True, help="Only these (repeatable)."
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


def chosen_statuses(names: tuple[str, ...]) -> list[Status] | None:
    """The statuses named by --status options; None when none was given."""
    return [Status[name.upper()] for name in names] or None


def column_names(text: str | None) -> list[str] | None:
    """The names a --columns A,B,... option gives (row columns or state keys); None when it
    was not given."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError("--columns needs at least one name")
    return names
