"""`dbdict help`: the topics of the original dbdict, and every command's help."""

from __future__ import annotations

import click

from dbdict_celery.cli import help_topics
from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.params import format_help


@click.command("help")
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
        for name in group.list_commands(ctx):
            listed = group.get_command(ctx, name)
            assert listed is not None
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
