"""Where things are: table paths, the embedded default, and masking of credentials.

A table path names a database and a table in it, as the original did:
`postgresql://user:pass@host[:port]/dbname/tablename` (`postgres://` too) or
`sqlite:///path/to/jobs.db/tablename`. The table part may be left out (then it
is `jobs`, or `--table`). With no path at all, `DBDICT_DB` from the
environment is used, else an SQLite database in `DBDICT_HOME`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import platformdirs
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from dbdict_celery.errors import UsageError

DEFAULT_TABLE = "jobs"
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SCHEMES = {
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
    "sqlite": "sqlite",
}


def home() -> str:
    """The data directory: `DBDICT_HOME`, else the user's data directory for dbdict."""
    return os.environ.get("DBDICT_HOME") or platformdirs.user_data_dir("dbdict-celery")


@dataclass(frozen=True)
class TablePath:
    """A database (as an SQLAlchemy URL) and the name of the job table in it."""

    url: URL
    table: str

    @property
    def dbname(self) -> str:
        """The database's name, as it appears in exproot paths (`EXPROOT/dbname/table/ID`)."""
        database = self.url.database or "db"
        return os.path.splitext(os.path.basename(database))[0] if self.is_sqlite else database

    @property
    def is_sqlite(self) -> bool:
        return self.url.get_backend_name() == "sqlite"

    def __str__(self) -> str:
        """The path with its password masked: safe to print and log."""
        return f"{mask(self.url)}/{self.table}"


def validate_table(name: str) -> str:
    """Refuse a table name that is not a plain SQL identifier (it is never quoted by hand)."""
    if not _IDENTIFIER.fullmatch(name):
        raise UsageError(
            f"invalid table name {name!r}: use letters, digits and _ (not first), 63 at most"
        )
    return name


def table_path(location: str | None = None, table: str | None = None) -> TablePath:
    """Read a table path; None means DBDICT_DB, else the embedded SQLite database."""
    location = location or os.environ.get("DBDICT_DB")
    if not location:
        database = os.path.join(home(), "jobs.db")
        return TablePath(
            URL.create("sqlite", database=database), validate_table(table or DEFAULT_TABLE)
        )
    scheme = location.partition("://")[0]
    if scheme not in _SCHEMES:
        raise UsageError(
            f"malformed table path {_masked_text(location)!r}: expected "
            "postgresql://user@host/db/table or sqlite:///path/jobs.db/table"
        )
    if scheme == "sqlite":
        url_text, named = _split_sqlite(location)
    else:
        url_text, named = _split_server(location)
    if named and table and named != table:
        raise UsageError(f"the table is given twice: {named!r} in the path and {table!r}")
    try:
        url = make_url(url_text).set(drivername=_SCHEMES[scheme])
    except (ArgumentError, ValueError) as error:
        raise UsageError(f"malformed table path {_masked_text(location)!r}: {error}") from None
    if not url.database:
        raise UsageError(f"table path {_masked_text(location)!r} names no database")
    return TablePath(url, validate_table(named or table or DEFAULT_TABLE))


def _split_server(location: str) -> tuple[str, str | None]:
    """`scheme://auth@host/db[/table][?query]` -> (URL text without the table, table)."""
    parts = urlsplit(location)
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) > 2:
        raise UsageError(
            f"malformed table path {_masked_text(location)!r}: "
            "expected /dbname/tablename after the host"
        )
    table = segments[1] if len(segments) == 2 else None
    url = parts._replace(path="/" + segments[0] if segments else "").geturl()
    return url, table


def _split_sqlite(location: str) -> tuple[str, str | None]:
    """`sqlite:///path/jobs.db[/table]`: a last part without a dot names the table."""
    path = location[len("sqlite:///") :] if location.startswith("sqlite:///") else ""
    head, _, last = path.rpartition("/")
    if head and last and "." not in last:
        return f"sqlite:///{head}", last
    return location, None


def mask(url: URL) -> str:
    """A database URL as text with its password replaced by ***."""
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def _masked_text(text: str) -> str:
    return re.sub(r"(://[^:/@\s]*:)[^@/\s]*@", r"\1***@", text)


def heartbeat_interval() -> float:
    """Seconds between a running job's heartbeats (`DBDICT_HEARTBEAT`, default 30)."""
    text = os.environ.get("DBDICT_HEARTBEAT", "30")
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"DBDICT_HEARTBEAT must be a number of seconds, not {text!r}") from None
    if seconds <= 0:
        raise UsageError(f"DBDICT_HEARTBEAT must be positive, not {text!r}")
    return seconds
