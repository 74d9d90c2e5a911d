"""The job tables of one database, and a store for each, opened once.

The dashboard serves every job table of the database it is given: the schema-version
table that each job table registers in (`dbdict_schema`) lists them. Stores are kept
for the life of the app, so each table's statements are compiled once and its schema
checked once.
"""

from __future__ import annotations

import logging
import threading

from dbdict_celery.config import TablePath, table_path, validate_table
from dbdict_celery.errors import StoreError, TableMissing
from dbdict_celery.store.store import JobStore
from dbdict_celery.store.tables import job_tables

log = logging.getLogger(__name__)


class Catalog:
    """The database at `location` (a table path as `--db` takes it; None: DBDICT_DB, else
    the embedded one) and its job tables; the table the path names is the first shown."""

    def __init__(self, location: str | None, table: str | None = None) -> None:
        self.location = location
        self.path: TablePath = table_path(location, table)
        self._stores: dict[str, JobStore] = {}
        self._lock = threading.Lock()

    @property
    def database(self) -> str:
        """The database as it may be shown: its password masked."""
        return str(self.path).rpartition("/")[0]

    def tables(self) -> list[str]:
        """The names of the job tables of the database, in name order (none if dbdict has
        not made one there yet)."""
        return job_tables(self.path)

    def paths(self) -> list[TablePath]:
        """The path of each job table of the database now; the one named alone while the
        database cannot be listed (it may not answer yet: its metrics then say it is down)."""
        try:
            names = self.tables()
        except StoreError as error:
            log.warning("dashboard: the tables of %s cannot be listed: %s", self.database, error)
            names = []
        return [TablePath(self.path.url, name) for name in names] or [self.path]

    def store(self, table: str) -> JobStore:
        """The store of one job table of the database; TableMissing if there is none."""
        validate_table(table)
        with self._lock:
            if table not in self._stores:
                if table not in self.tables():
                    raise TableMissing(f"there is no job table {self.database}/{table}")
                self._stores[table] = JobStore(TablePath(self.path.url, table), create=False)
            return self._stores[table]
