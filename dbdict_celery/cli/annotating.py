"""What users say of their jobs: `dbdict tag` and `dbdict note`."""

from __future__ import annotations

import click

import dbdict_celery as api
from dbdict_celery.cli.options import db_options, json_option, where_option
from dbdict_celery.cli.output import print_json
from dbdict_celery.errors import UsageError


@click.command(
    "tag", context_settings={"ignore_unknown_options": True, "help_option_names": ["--help"]}
)
@click.argument("words", nargs=-1, metavar="[ID]... [+TAG|-TAG]...")
@db_options
@where_option
@json_option
def tag_command(
    words: tuple[str, ...], db: str | None, table: str | None, filters: tuple[str, ...],
    as_json: bool,
) -> None:  # fmt: skip
    """Add (+NAME) and remove (-NAME) tags of jobs: dbdict tag 12 13 +baseline -old.

    Give IDs, or --where to choose the jobs (dbdict tag --where lr=0.1 +best). Find
    them again with --where tag=baseline (or tag!=old); list and show print them.
    """
    job_ids, add, remove = _read_words(words)
    if not add and not remove:
        raise UsageError("say which tags to add (+NAME) or remove (-NAME)")
    if bool(job_ids) == bool(filters):
        raise UsageError("give job IDs or --where, one of the two")
    store = api.JobStore.open(db, table, create=False)
    chosen = job_ids or [job.id for job in store.jobs(where=filters)]
    jobs = store.tag(chosen, add, remove)
    if as_json:
        print_json({"tagged": {job.id: (job.tags or "").split() for job in jobs}})
        return
    changes = " ".join([*(f"+{name}" for name in add), *(f"-{name}" for name in remove)])
    click.echo(f"{changes} on {len(jobs)} job{'s' if len(jobs) != 1 else ''}")


def _read_words(words: tuple[str, ...]) -> tuple[list[int], list[str], list[str]]:
    """Job ids, tags to add and tags to remove, from the command's words."""
    from dbdict_celery.store.tags import tag_name  # SQLAlchemy: not for `dbdict --help`

    job_ids: list[int] = []
    add: list[str] = []
    remove: list[str] = []
    for word in words:
        if word.isdigit():
            job_ids.append(int(word))
        elif word[:1] in "+-" and len(word) > 1:
            (add if word[0] == "+" else remove).append(tag_name(word[1:]))
        else:
            raise UsageError(f"{word!r}: expected a job ID, +TAG or -TAG")
    return job_ids, add, remove


@click.command("note")
@click.argument("job_id", type=int, metavar="ID")
@click.argument("note", metavar="TEXT")
@db_options
def note_command(job_id: int, note: str, db: str | None, table: str | None) -> None:
    """Write a note on job ID, shown by show, list and the dashboard ("" clears it)."""
    store = api.JobStore.open(db, table, create=False)
    job = store.annotate(job_id, note)
    click.echo(f"job {job.id}: {'note written' if job.note else 'note cleared'}")
