"""The `dbdict` command group: commands are imported only when they are used.

`dbdict run` must not pay for Celery: each command lives in a module found
here by name and imported only when that command (or the help listing) needs
it. Command modules reach the worker layer, the one that imports Celery, only
through the lazily loaded public API (`import dbdict_celery as api`), inside
the commands that use it.
"""

from __future__ import annotations

import importlib

import click

ALIASES = {"cmdline": "run", "sqlschedule": "schedule"}
COMMANDS = {
    "run": "local:run_command",
    "filemerge": "local:filemerge_command",
    "schedule": "scheduling:schedule_command",
    "optimize": "optimizing:optimize_command",
    "worker": "runners:worker_command",
    "sql": "runners:sql_command",
    "status": "reading:status_command",
    "list": "reading:list_command",
    "show": "reading:show_command",
    "metrics": "metrics:metrics_command",
    "metrics-server": "serving:metrics_server_command",
    "diff": "comparing:diff_command",
    "cancel": "jobs:cancel_command",
    "requeue": "jobs:requeue_command",
    "priority": "jobs:priority_command",
    "tag": "annotating:tag_command",
    "note": "annotating:note_command",
    "reconcile": "jobs:reconcile_command",
    "export": "results:export_command",
    "view": "results:view_command",
    "logs": "results:logs_command",
    "plot": "plotting:plot_command",
    "dashboard": "dashboard:dashboard_command",
    "help": "help_command:help_command",
}


class DbdictGroup(click.Group):
    """A command group that loads each command on first use, and knows the original
    command names as aliases."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        name = ALIASES.get(cmd_name, cmd_name)
        if name not in COMMANDS:
            return None
        module, _, attribute = COMMANDS[name].partition(":")
        command = getattr(importlib.import_module(f"{__package__}.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=DbdictGroup, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """dbdict: run experiments, checkpoint them, stop and resume them.

    An experiment is a Python function experiment(state, channel). Run one
    here with 'dbdict run', or schedule sweeps into a job table with
    'dbdict schedule' and run them with 'dbdict worker' (Celery) on any
    number of machines. Run 'dbdict help' for the topics (experiment,
    parameters, example, exit-codes).
    """
