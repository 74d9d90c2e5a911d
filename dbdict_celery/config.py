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
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

import platformdirs

from dbdict_celery.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

DEFAULT_TABLE = "jobs"
LOST_RUNS = 3  # runs a job may lose to dead workers before reconcile leaves it FAILED
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
    """Read a table path; None means DBDICT_DB, else the embedded SQLite database.

    `table` may not contradict a table named in `location`, but it overrides
    the one DBDICT_DB names (that is only a default; a worker takes the
    table from each message).
    """
    from sqlalchemy.engine import URL, make_url  # here: `dbdict --help` needs no SQLAlchemy
    from sqlalchemy.exc import ArgumentError

    from_environment = not location
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
    try:
        if scheme == "sqlite":
            url_text, named = _split_sqlite(location)
            url = make_url(url_text).set(drivername=_SCHEMES[scheme])
        else:
            url, named = _split_server(location)
    except (ArgumentError, ValueError) as error:
        raise UsageError(
            f"malformed table path {_masked_text(location)!r}: {error} (a password may hold "
            "any character; percent-encode @ % # ? / as %40 %25 %23 %3F %2F if in doubt)"
        ) from None
    if from_environment and table:
        named = None
    if named and table and named != table:
        raise UsageError(f"the table is given twice: {named!r} in the path and {table!r}")
    if not url.database:
        raise UsageError(f"table path {_masked_text(location)!r} names no database")
    return TablePath(url, validate_table(named or table or DEFAULT_TABLE))


def _split_server(location: str) -> tuple[URL, str | None]:
    """`scheme://user:password@host[:port]/db[/table][?query]` -> (the database's URL, table).

    The host follows the last `@`, so a password may hold `@`, `/`, `#` or `?`
    as typed; percent-encoded characters (`%40`) are decoded, as in any URL.
    """
    from sqlalchemy.engine import URL

    scheme, _, rest = location.partition("://")
    userinfo, at, hostpath = rest.rpartition("@")
    user, colon, password = userinfo.partition(":")
    parts = urlsplit(f"//{hostpath}")
    segments = [segment for segment in parts.path.split("/") if segment]
    if len(segments) > 2:
        raise UsageError(
            f"malformed table path {_masked_text(location)!r}: "
            "expected /dbname/tablename after the host"
        )
    url = URL.create(
        _SCHEMES[scheme],
        username=unquote(user) if at else None,
        password=unquote(password) if colon else None,
        host=parts.hostname,
        port=parts.port,
        database=unquote(segments[0]) if segments else None,
        query=dict(parse_qsl(parts.query)),
    )
    return url, segments[1] if len(segments) == 2 else None


def _split_sqlite(location: str) -> tuple[str, str | None]:
    """`sqlite:///path/jobs.db[/table]`: a last part without a dot names the table."""
    path = location[len("sqlite:///") :] if location.startswith("sqlite:///") else ""
    head, _, last = path.rpartition("/")
    if head and last and "." not in last:
        return f"sqlite:///{head}", last
    return location, None


SECRET_QUERY_KEYS = ("password", "sslpassword")  # libpq takes a password there too


def mask(url: URL) -> str:
    """A database URL as text with its password replaced by ***, in its user part and in
    its query (`?password=...`)."""
    hidden = {key: "***" for key in url.query if key.lower() in SECRET_QUERY_KEYS}
    shown = url.set(drivername=url.get_backend_name()).update_query_dict(hidden)
    return shown.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def _masked_text(text: str) -> str:
    """A location as typed, with everything between `user:` and the last `@` masked: a
    password may hold any character, `@` and `/` included."""
    scheme, separator, rest = text.partition("://")
    userinfo, at, host = rest.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    if not separator or not at or not colon:
        return text
    return f"{scheme}://{user}:***@{host}"


def broker_url() -> str:
    """The Celery broker: `DBDICT_BROKER`, else the embedded SQLite broker in DBDICT_HOME."""
    url = os.environ.get("DBDICT_BROKER")
    if url:
        return url
    return "sqla+sqlite:///" + os.path.join(home(), "broker.db")


def default_exproot() -> str:
    """Where jobs scheduled without an exproot keep their files: `DBDICT_EXPROOT`, else
    `DBDICT_HOME/exproot`."""
    return os.environ.get("DBDICT_EXPROOT") or os.path.join(home(), "exproot")


def heartbeat_interval() -> float:
    """Seconds between a running job's heartbeats (`DBDICT_HEARTBEAT`, default 30)."""
    return _seconds("DBDICT_HEARTBEAT", 30.0)


def stale_after() -> float:
    """Seconds without a heartbeat after which a RUNNING job is deemed dead
    (`DBDICT_STALE_AFTER`, default 300: ten missed heartbeats at the default interval)."""
    return _seconds("DBDICT_STALE_AFTER", 300.0)


def retry_delay() -> float:
    """Seconds before a job that a worker gave back, being unable to run it there (exproot
    out of reach, experiment not importable), is sent again (`DBDICT_RETRY_DELAY`, default 60)."""
    return _seconds("DBDICT_RETRY_DELAY", 60.0)


def reconcile_interval() -> float:
    """Seconds between two reconcile passes of `celery -A dbdict_celery beat`
    (`DBDICT_RECONCILE_INTERVAL`, default 60)."""
    return _seconds("DBDICT_RECONCILE_INTERVAL", 60.0)


def drive_interval() -> float:
    """Seconds between two looks of `celery -A dbdict_celery beat` at the detached studies
    (`dbdict optimize --detach`) of DBDICT_DB's table (`DBDICT_DRIVE_INTERVAL`, default 5)."""
    return _seconds("DBDICT_DRIVE_INTERVAL", 5.0)


def grace_period() -> float:
    """Seconds a stopped job gets to save before its worker kills it (`DBDICT_GRACE`, default 25).

    Below the 30 s that Slurm, Kubernetes and many others wait between SIGTERM and SIGKILL.
    """
    return _seconds("DBDICT_GRACE", 25.0)


DEFAULT_QUEUE = "dbdict"  # the Celery queue of jobs scheduled without --queue
_DEVICE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_:.-]{0,99}")


def gpus() -> tuple[str, ...]:
    """The GPUs this worker hands to its jobs (`DBDICT_GPUS`: device ids or UUIDs as
    `CUDA_VISIBLE_DEVICES` names them, comma-separated, e.g. 0,1,2,3); none by default."""
    return parse_devices(os.environ.get("DBDICT_GPUS", ""), "DBDICT_GPUS")


def parse_devices(text: str, what: str) -> tuple[str, ...]:
    """Device ids from `0,1,2,3` (or GPU-... UUIDs); a UsageError naming `what` for a
    malformed one or one given twice."""
    found = tuple(name.strip() for name in text.split(",") if name.strip())
    for name in found:
        if not _DEVICE.fullmatch(name):
            raise UsageError(f"{what}: malformed device {name!r} (e.g. 0,1,2,3)")
    if len(set(found)) != len(found):
        raise UsageError(f"{what}: a device is named twice in {text!r}")
    return found


# The signals schedulers send to say "stop soon" (Slurm's --signal, LSF's and Grid Engine's
# warnings): not those the worker's own machinery uses (CHLD, PIPE, ALRM), nor KILL or STOP.
STOPPING_SIGNALS = frozenset({"SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
                              "SIGXCPU"})  # fmt: skip


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals a worker takes as "stop the running jobs, save and give them back", as a
    SIGTERM (`DBDICT_STOP_SIGNALS`, comma-separated names, default TERM): for a scheduler that
    warns of its time limit with another, as Slurm's `--signal=B:USR2@120` does (USR1 is
    Celery's own, and NCCL's). SIGTERM stops a worker either way."""
    return parse_signals(os.environ.get("DBDICT_STOP_SIGNALS", "TERM"), "DBDICT_STOP_SIGNALS")


def parse_signals(text: str, what: str) -> tuple[signal.Signals, ...]:
    """Signals from names (`TERM,USR2`, `SIGUSR2`, any case); a UsageError naming `what` for
    an unknown one, or one no process can catch."""
    found: list[signal.Signals] = []
    for name in re.split(r"[\s,]+", text.strip()):
        if not name:
            continue
        full = name.upper() if name.upper().startswith("SIG") else f"SIG{name.upper()}"
        if full not in STOPPING_SIGNALS:
            raise UsageError(
                f"{what}: {name!r} is not a signal that may stop a worker: one of "
                f"{', '.join(sorted(each.removeprefix('SIG') for each in STOPPING_SIGNALS))}"
            )
        chosen = signal.Signals[full]
        found.append(chosen)
    if not found:
        raise UsageError(f"{what}: no signal named (e.g. TERM,USR2)")
    return tuple(dict.fromkeys(found))


PROCESS = "process"
INLINE = "inline"


def isolation() -> str:
    """Where a worker runs each experiment (`DBDICT_ISOLATION`): `process` (the default), a
    supervised process of its own that can be stopped, killed with everything it started,
    and watched for its death; or `inline`, in the worker's pool process itself, as a plain
    call (a little faster for jobs of milliseconds, but a job that never calls `switch()`
    cannot be stopped there, and `multiprocessing` is refused)."""
    text = os.environ.get("DBDICT_ISOLATION", PROCESS).strip().lower() or PROCESS
    if text not in (PROCESS, INLINE):
        raise UsageError(f"DBDICT_ISOLATION must be {PROCESS!r} or {INLINE!r}, not {text!r}")
    return text


def max_state_bytes() -> int:
    """The largest state (as JSON) a job may save to the table: `DBDICT_MAX_STATE_MB`, default
    16. Above it, a value belongs in a file of the working directory."""
    return int(_seconds("DBDICT_MAX_STATE_MB", 16.0) * 1024 * 1024)


def max_attempts() -> int:
    """Failures a job may have before it stays FAILED (`DBDICT_MAX_ATTEMPTS`, default 1); its
    preemptions and lost runs do not count."""
    text = os.environ.get("DBDICT_MAX_ATTEMPTS", "1")
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"DBDICT_MAX_ATTEMPTS must be a whole number >= 1, not {text!r}")
    return int(text)


TRANSACTION_POOLER = "transaction"


def transaction_pooler() -> bool:
    """Whether the job database is reached through a pooler in transaction mode, such as
    PgBouncer with `pool_mode = transaction` (`DBDICT_POOLER=transaction`; unset or `none`:
    straight to Postgres). Such a pooler hands each transaction to any of its server
    sessions, so the connections keep no prepared statements and send no startup options."""
    text = os.environ.get("DBDICT_POOLER", "none").strip().lower()
    if text not in ("", "none", TRANSACTION_POOLER):
        raise UsageError(
            f"DBDICT_POOLER must be 'transaction' (PgBouncer in transaction mode) or 'none', "
            f"not {text!r}"
        )
    return text == TRANSACTION_POOLER


def capture_enabled() -> bool:
    """Whether runs record their code and environment (`DBDICT_CAPTURE`, default on; `off`, `0`,
    `no` or `false` turn it off). Their attempts are recorded either way."""
    return os.environ.get("DBDICT_CAPTURE", "on").strip().lower() not in ("off", "0", "no", "false")


def _seconds(variable: str, default: float) -> float:
    """A positive number from the environment (seconds, most often), else `default`."""
    text = os.environ.get(variable)
    if text is None:
        return default
    try:
        seconds = float(text)
    except ValueError:
        raise UsageError(f"{variable} must be a positive number, not {text!r}") from None
    if not seconds > 0:
        raise UsageError(f"{variable} must be positive, not {text!r}")
    return seconds
