"""The `dbdict` command: a thin layer that parses arguments, calls the Python API and prints.

Every error dbdict raises on purpose is printed as one line with exit code 2
(a usage mistake) or 1 (a runtime failure). An exception raised by the
experiment itself is shown with its traceback and exits 1.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn

import click

from dbdict_celery import help_topics, runner
from dbdict_celery.channel import Channel
from dbdict_celery.dbrunner import run_sql
from dbdict_celery.errors import DbdictError, UsageError
from dbdict_celery.job import DEFAULT_PRIORITY
from dbdict_celery.params import format_help
from dbdict_celery.schedule import schedule
from dbdict_celery.store import JobStore

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


@cli.command("run")
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
    _report(runner.run_cmdline(experiment, params, _options(**flags)))


@cli.command("filemerge")
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
    _report(runner.run_filemerge(experiment, sources, _options(**flags)))


def _report(result: runner.RunResult) -> None:
    if result.status == Channel.DONE:
        click.echo(f"dbdict: DONE ({result.workdir})", err=True)
    else:
        click.echo(
            f"dbdict: INCOMPLETE, state saved in {result.workdir}; "
            "run the same command again to resume",
            err=True,
        )


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


@cli.command("schedule")
@click.argument("experiment")
@click.argument("params", nargs=-1)
@db_options
@click.option(
    "--priority", type=float, default=DEFAULT_PRIORITY, show_default=True, help="Higher runs first."
)
@click.option(
    "--exproot", metavar="PATH", help="Where the job keeps its files: a path or ssh://host:path."
)
def schedule_command(
    experiment: str,
    params: tuple[str, ...],
    db: str | None,
    table: str | None,
    priority: float,
    exproot: str | None,
) -> None:
    """Add a job to the table (alias: sqlschedule).

    The experiment must be importable here: nothing is inserted otherwise.
    Scheduling the same experiment and parameters twice makes one job.
    """
    store = JobStore.open(db, table)
    inserted = schedule(store, experiment, params, priority, exproot)
    if inserted.created:
        click.echo(f"scheduled job {inserted.id} in {store.path}")
    else:
        click.echo(f"job {inserted.id} is already in {store.path}: not scheduled again")


@cli.command("sql")
@click.argument("exproot")
@db_options
@click.option(
    "-n",
    "count",
    type=int,
    default=1,
    show_default=True,
    help="How many jobs to run; 0 or less: until none is left.",
)
def sql_command(exproot: str, db: str | None, table: str | None, count: int) -> None:
    """Run jobs from the table on this machine, without a broker.

    Books the highest-priority START job, runs it with its files in
    EXPROOT/dbname/tablename/ID (a path or ssh://host:path; a job scheduled
    with --exproot keeps its own), and repeats. Any number of these may run
    in parallel on one table: no job runs twice.
    """
    report = run_sql(JobStore.open(db, table), exproot, count)
    if report.drained:
        click.echo(f"No more jobs to run (ran {report.ran} jobs)")
    elif report.stopped:
        click.echo(f"Stopped on request (ran {report.ran} jobs)")
    else:
        click.echo(f"Ran {report.ran} jobs")


@cli.command("help")
@click.argument("topic", required=False)
@click.pass_context
def help_command(ctx: click.Context, topic: str | None) -> None:
    """Show the help topics and commands, or the help of one TOPIC or COMMAND."""
    group = ctx.find_root().command
    assert isinstance(group, click.Group)
    if topic is None:
        click.secho("Topics: (use dbdict help TOPIC for more)", bold=True)
        for name, summary in help_topics.SUMMARIES.items():
            click.echo(f"  {name.ljust(14)} {summary}")
        click.echo()
        click.secho("Commands: (use dbdict help COMMAND for more)", bold=True)
        for name, listed in sorted(group.commands.items()):
            click.echo(f"  {name.ljust(14)} {listed.get_short_help_str(limit=70)}")
        return
    if topic in help_topics.TOPICS:
        click.echo(format_help(help_topics.TOPICS[topic]))
        return
    command = group.get_command(ctx, topic)
    if command is None:
        raise UsageError(f"no help topic or command named {topic!r} (try 'dbdict help')")
    with click.Context(command, info_name=topic, parent=ctx.find_root()) as sub:
        click.echo(command.get_help(sub))


def main(argv: list[str] | None = None) -> NoReturn:
    """Entry point of the `dbdict` console script."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, os.getcwd())  # experiments are importable from where dbdict runs
    try:
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
