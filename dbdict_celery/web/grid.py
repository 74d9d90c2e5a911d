"""The jobs grid: one page of a table's jobs, filtered and sorted as `dbdict list` does.

Filters and sort keys are the CLI's (`--where lr>0.01`, `--sort -loss`), parsed and
turned into SQL by the store's own code, their values always bound. A page is read
with LIMIT and OFFSET, one row more than shown to know whether another page follows:
no count of the whole selection, no row beyond the page, so the first page of a table
of a million jobs is as quick as that of a table of ten.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dbdict_celery.errors import UsageError
from dbdict_celery.experiment.status import Status
from dbdict_celery.store.grouping import Aggregate, Group
from dbdict_celery.store.job import Job, default_columns, value_of
from dbdict_celery.store.store import JobStore

PAGE_SIZES = (25, 50, 100, 500)
DEFAULT_PAGE_SIZE = 50
MAX_GROUPS = 500  # a grouping by a key of many values (an id, a loss) shows its first groups


@dataclass(frozen=True)
class GridQuery:
    """What a grid shows, as its query parameters say: the same words as `dbdict list`."""

    statuses: tuple[Status, ...] = ()
    where: tuple[str, ...] = ()
    sort: str | None = None
    columns: tuple[str, ...] = ()  # none chosen: id, status, the parameters, the results
    page: int = 1
    size: int = DEFAULT_PAGE_SIZE
    group_by: tuple[str, ...] = ()  # given: one row per group, as `list --group-by`
    agg: tuple[str, ...] = ()  # with group_by: `mean,std:loss`, as `list --agg`

    @classmethod
    def parse(cls, params: Any) -> GridQuery:
        """From a request's query parameters (a multi-dict: `getlist`): `status`, `where`
        (repeatable, empty ones ignored), `sort`, `columns` (A,B,...), `page`, `size`.
        UsageError names a malformed one."""
        statuses = []
        for name in params.getlist("status"):
            try:
                statuses.append(Status[name.upper()])
            except KeyError:
                names = ", ".join(status.name.lower() for status in Status)
                raise UsageError(f"no status {name!r}: use one of {names}") from None
        where = tuple(text.strip() for text in params.getlist("where") if text.strip())
        return cls(
            statuses=tuple(statuses),
            where=where,
            sort=(params.get("sort") or "").strip() or None,
            columns=_names(params.get("columns")),
            group_by=_names(params.get("group_by")),
            agg=tuple(text.strip() for text in params.getlist("agg") if text.strip()),
            page=_positive(params.get("page"), "page", 1),
            size=min(_positive(params.get("size"), "size", DEFAULT_PAGE_SIZE), PAGE_SIZES[-1]),
        )

    def items(self, **changes: Any) -> list[tuple[str, str]]:
        """These choices (with `changes`) as query parameters: links to other pages and sorts
        keep the filters."""
        chosen = {**self.__dict__, **changes}
        pairs = [("status", status.name.lower()) for status in chosen["statuses"]]
        pairs += [("where", text) for text in chosen["where"]]
        if chosen["sort"]:
            pairs.append(("sort", chosen["sort"]))
        if chosen["columns"]:
            pairs.append(("columns", ",".join(chosen["columns"])))
        if chosen["page"] != 1:
            pairs.append(("page", str(chosen["page"])))
        if chosen["size"] != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(chosen["size"])))
        if chosen["group_by"]:
            pairs.append(("group_by", ",".join(chosen["group_by"])))
        pairs += [("agg", text) for text in chosen["agg"]]
        return pairs

    def of_group(self, values: Sequence[Any]) -> list[tuple[str, str]] | None:
        """The query parameters of the grid of one group's jobs: these filters, and each
        grouping key equal to the group's value (each of its tags, for `tags`). None when a
        filter cannot say it: a key the jobs do not have, a time."""
        within: list[str] = []
        for key, value in zip(self.group_by, values, strict=True):
            if value is None or isinstance(value, datetime):
                return None
            if key == "tags":
                within += (f"tag={name}" for name in value.split())
            else:
                within.append(f"{key}={value!r}")
        return GridQuery(self.statuses, (*self.where, *within), self.sort).items()


@dataclass(frozen=True)
class GridPage:
    """One page of the grid: its jobs and columns, and whether pages follow; or, grouped,
    the first MAX_GROUPS groups, and whether there are more."""

    query: GridQuery
    jobs: list[Job]
    columns: list[str]
    rows: list[list[Any]]  # each job's (or group's) values, in the order of `columns`
    more: bool
    groups: list[Group] | None = None

    @property
    def first(self) -> int:
        """The position of the page's first job in the selection, from 1."""
        return (self.query.page - 1) * self.query.size + 1


def grid_page(store: JobStore, query: GridQuery) -> GridPage:
    """One page of the jobs `query` chooses, in its order; or their groups."""
    if query.group_by:
        aggregates = Aggregate.parse_all(query.agg)
        groups = store.groups(query.group_by, aggregates, query.statuses or None, query.where,
                              limit=MAX_GROUPS + 1)  # fmt: skip
        shown_groups = groups[:MAX_GROUPS]
        columns = [*query.group_by, "jobs", *map(str, aggregates)]
        rows = [[*g.values, g.jobs, *(g.results[a] for a in aggregates)] for g in shown_groups]
        return GridPage(query, [], columns, rows, len(groups) > MAX_GROUPS, shown_groups)
    offset = (query.page - 1) * query.size
    statuses = query.statuses or None
    jobs = store.jobs(statuses, query.where, query.size + 1, query.sort, offset=offset)
    shown = jobs[: query.size]
    columns = list(query.columns) or default_columns(shown)
    rows = [[value_of(job, name) for name in columns] for job in shown]
    return GridPage(query, shown, columns, rows, len(jobs) > query.size)


def _names(text: str | None) -> tuple[str, ...]:
    """The names of an `A,B,...` parameter."""
    return tuple(name.strip() for name in (text or "").split(",") if name.strip())


def _positive(text: str | None, what: str, default: int) -> int:
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{what} must be a whole number from 1, not {text!r}")
    return int(text)
