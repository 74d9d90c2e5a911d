"""`dbdict diff`: what differs between two jobs, or two runs of one job."""

from __future__ import annotations

import click

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, json_option
from dbdict_celery.cli.output import print_json, rich_table, stdout


@click.command("diff")
@click.argument("left", metavar="ID[@N]")
@click.argument("right", metavar="ID[@N]")
@db_options
@json_option
def diff_command(left: str, right: str, db: str | None, table: str | None, as_json: bool) -> None:
    """What differs between two jobs: parameters, code (commit, branch, uncommitted changes),
    Python, platform, host, package versions, recorded variables and hardware.

    Each job is compared as its last run ran; ID@N takes its run N (12@1: job 12's first).
    """
    one, other = api.RunRef.parse(left), api.RunRef.parse(right)
    store = api.JobStore.open(db, table, create=False)
    differences = api.compare(store, one, other)
    if as_json:
        print_json({
            "left": str(one),
            "right": str(other),
            "differences": [
                {"kind": d.kind, "name": d.name, "left": d.left, "right": d.right}
                for d in differences
            ],
        })  # fmt: skip
        return
    if not differences:
        click.echo(f"{one} and {other}: same parameters, code and environment")
        return
    rows = [(d.kind, d.name, d.left, d.right) for d in differences]
    title = f"What differs between {one} and {other}"
    stdout().print(rich_table(title, ["kind", "name", str(one), str(other)], rows))
