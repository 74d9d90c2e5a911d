"""The `dbdict` command: a thin layer that parses arguments, calls the Python API and prints.

Every error dbdict raises on purpose is printed as one line with exit code 2
(a usage mistake) or 1 (a runtime failure). An exception raised by the
experiment itself is shown with its traceback and exits 1. The whole table,
3 (INCOMPLETE) included, is `dbdict help exit-codes`.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import click

from dbdict_celery.cli.group import cli
from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment.runner import importing_from_cwd

__all__ = ["cli", "main"]


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `dbdict` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with importing_from_cwd():  # experiments import from where dbdict runs
            code = cli.main(args=argv, prog_name="dbdict", standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as error:
        click.echo(error.format_message(), err=True)
        sys.exit(error.exit_code)
    except click.UsageError as error:
        where = error.ctx.command_path if error.ctx else "dbdict"
        _fail(f"{where}: {error.format_message()} (see '{where} --help')", error.exit_code)
    except click.ClickException as error:
        _fail(f"dbdict: {error.format_message()}", error.exit_code)
    except click.Abort:
        _fail("dbdict: aborted", 1)
    except DbdictError as error:
        _fail(f"dbdict: {error}", error.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int) -> NoReturn:
    click.secho(message, fg="red", err=True)
    sys.exit(code)
