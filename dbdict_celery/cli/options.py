"""The options several commands share."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.limits import FAIL, REQUEUE, Limits

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


def limit_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--max-running, --group, --gpus, --time-limit, --on-time-limit, --memory, --retries,
    --retry-backoff and --retry-on: the limits of the jobs a command makes. The command
    receives them as `limits`, checked (a malformed duration or size is a usage error
    naming its option)."""

    @functools.wraps(command)
    def with_limits(*args: Any, time_limit: str | None, on_time_limit: str, memory: str | None,
                    retries: int | None, retry_backoff: str | None, retry_on: str | None,
                    gpus: int, max_running: int | None, group: str | None,
                    **kwargs: Any) -> Any:  # fmt: skip
        limits = Limits.parse(time_limit, on_time_limit, memory, retries, retry_backoff, retry_on,
                              gpus, max_running, group)  # fmt: skip
        return command(*args, limits=limits, **kwargs)

    options = [
        click.option(
            "--max-running",
            type=click.IntRange(min=1),
            metavar="N",
            help="At most N of these jobs (or of --group's) RUNNING at once, over all workers; "
            "the others wait, unbooked.",
        ),
        click.option(
            "--group",
            metavar="NAME",
            help="The jobs --max-running counts: those of every command given this group "
            "(default: this command's).",
        ),
        click.option(
            "--gpus",
            type=click.IntRange(min=0),
            default=0,
            metavar="K",
            help="GPUs each run has to itself, in CUDA_VISIBLE_DEVICES: only workers given at "
            "least K (DBDICT_GPUS) run these jobs.",
        ),
        click.option(
            "--time-limit",
            metavar="DURATION",
            help="How long each run may last (90s, 15m, 2h): it is then asked to stop, and "
            "killed after the grace period.",
        ),
        click.option(
            "--on-time-limit",
            type=click.Choice([FAIL, REQUEUE]),
            default=FAIL,
            show_default=True,
            help="A job that reaches its time limit ends FAILED, or goes back to START to "
            "resume from its last save (for jobs that checkpoint).",
        ),
        click.option(
            "--memory",
            metavar="SIZE",
            help="The most memory a run's processes may hold together (300M, 8G): beyond it "
            "the run is killed and its job ends FAILED.",
        ),
        click.option(
            "--retries",
            type=click.IntRange(min=0),
            metavar="N",
            help="Send a job that failed again, up to N times (default: the worker's "
            "DBDICT_MAX_ATTEMPTS - 1). Preemptions and lost runs never count.",
        ),
        click.option(
            "--retry-backoff",
            metavar="DURATION",
            help="The delay before the first retry, doubled for each one after, with jitter "
            "(default 30s).",
        ),
        click.option(
            "--retry-on",
            metavar="TYPES",
            help="Retry only failures raising these exception types or their subclasses "
            "(comma-separated: ValueError,OSError).",
        ),
    ]
    for option in reversed(options):
        with_limits = option(with_limits)
    return with_limits
