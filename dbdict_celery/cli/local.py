"""Running one experiment here, without a table: `dbdict run` and `dbdict filemerge`."""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from typing import Any

import click

from dbdict_celery.cli import help_topics
from dbdict_celery.errors import DbdictError
from dbdict_celery.experiment import runner
from dbdict_celery.experiment.channel import Channel
from dbdict_celery.experiment.params import format_help

INCOMPLETE_EXIT = 3  # `dbdict run` of a run that stopped before its end, its state saved
FAILED_EXIT = DbdictError.exit_code  # a run recorded FAILED exits as any failure does
# The table of `dbdict help exit-codes`, under each runner's help, its lines kept as written.
EXIT_CODES = "\n\n".join(
    f"\b\n{paragraph}" for paragraph in format_help(help_topics.EXIT_CODES).split("\n\n")
)


def run_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The original runners' options, shared by `run` and `filemerge`."""
    options = [
        click.option(
            "-f",
            "--force",
            is_flag=True,
            help="Run the experiment even if it is already running or completed.",
        ),
        click.option(
            "--redirect-stdout", is_flag=True, help="Redirect stdout to the file workdir/stdout."
        ),
        click.option(
            "--redirect-stderr", is_flag=True, help="Redirect stderr to the file workdir/stderr."
        ),
        click.option(
            "-r",
            "--redirect",
            is_flag=True,
            help="Redirect stdout and stderr to workdir/stdout and workdir/stderr.",
        ),
        click.option(
            "-w", "--workdir", metavar="DIR", help="The working directory to run the experiment in."
        ),
        click.option(
            "--restart",
            is_flag=True,
            help="Start over: forget the working directory's saved state (orig.conf and "
            "current.conf), e.g. to run it with other parameters.",
        ),
        click.option(
            "-n",
            "--dry-run",
            is_flag=True,
            help="Run in a temporary working directory, removed afterwards.",
        ),
    ]
    return functools.reduce(lambda wrapped, option: option(wrapped), reversed(options), command)


def _options(
    redirect: bool, redirect_stdout: bool, redirect_stderr: bool, **rest: Any
) -> runner.RunOptions:
    return runner.RunOptions(
        redirect_stdout=redirect or redirect_stdout,
        redirect_stderr=redirect or redirect_stderr,
        **rest,
    )


@click.command("run", epilog=EXIT_CODES)
@click.argument("experiment")
@click.argument("params", nargs=-1)
@run_options
def run_command(experiment: str, params: tuple[str, ...], **flags: Any) -> None:
    """Run an experiment with parameters given on the command line (alias: cmdline).

    EXPERIMENT is the dotted name of the function; each of PARAMS is
    key=value or key::builder (see 'dbdict help parameters').

    \b
    Example:
        dbdict run examples.regexp.experiment regexp::re.compile regexp.pattern='a.*c'
    """
    with _reporting_exits():
        result = runner.run_cmdline(experiment, params, _options(**flags))
    _report(result)


@click.command("filemerge", epilog=EXIT_CODES)
@click.argument("experiment")
@click.argument("sources", nargs=-1, metavar="FILE [FILE|key=value ...]")
@run_options
def filemerge_command(experiment: str, sources: tuple[str, ...], **flags: Any) -> None:
    """Run an experiment with the union of the parameters in files.

    Each FILE holds key = value lines; key=value arguments may be mixed in.
    Later ones override earlier ones.

    \b
    Example, with blah1.txt holding:
        text.first = 'hello'
        text.second = 'world'
    and blah2.txt holding:
        text.tagline = 'THE GREATEST LANGUAGE EVER'
    then
        dbdict filemerge mymodule.my_experiment blah1.txt blah2.txt
    means the same as
        dbdict run mymodule.my_experiment text.first=hello text.second=world \\
            text.tagline='THE GREATEST LANGUAGE EVER'
    """
    with _reporting_exits():
        result = runner.run_filemerge(experiment, sources, _options(**flags))
    _report(result)


@contextlib.contextmanager
def _reporting_exits() -> Iterator[None]:
    """An experiment that calls sys.exit is recorded FAILED (the channel records any exception
    so), and the command exits as a failure whatever the code: sys.exit(0) or sys.exit(3)
    would otherwise tell a script DONE or INCOMPLETE of a run that is neither."""
    try:
        yield
    except SystemExit as exit:
        click.echo(
            f"dbdict: the experiment called sys.exit({exit.code!r}): the run is recorded FAILED",
            err=True,
        )
        raise SystemExit(FAILED_EXIT) from None


def _report(result: runner.RunResult) -> None:
    """Say how the run ended; an INCOMPLETE one exits INCOMPLETE_EXIT, so that a script can
    tell it from DONE (0) and from a failure (1)."""
    sys.stdout.flush()  # the experiment's last lines come before the verdict
    if result.workdir is None:
        click.echo("dbdict: " + ("DONE" if result.status == Channel.DONE else "INCOMPLETE")
                   + " (dry run: nothing was kept)", err=True)  # fmt: skip
    elif result.status == Channel.DONE:
        click.echo(f"dbdict: DONE ({result.workdir})", err=True)
    else:
        click.echo(
            f"dbdict: INCOMPLETE, state saved in {result.workdir}; "
            "run the same command again to resume",
            err=True,
        )
    if result.status != Channel.DONE:
        raise SystemExit(INCOMPLETE_EXIT)
