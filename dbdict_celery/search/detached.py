"""Detached studies (`dbdict optimize --detach`): driven by the workers, not by a command.

Celery beat sends `drive_studies` every `DBDICT_DRIVE_INTERVAL` seconds; the worker that
runs it takes one look at each detached study of the table (tell what ended, prune, ask
for new trials), as the command's driver would. The study is rebuilt from the table at
each look: nothing is kept between them. A study whose driver is at work elsewhere (its
command run again, or another look still going) is left to it, and a study whose look
fails (a DONE trial without the objective, a sampler this worker cannot load) is logged
and looked at again next time, without holding up the others.
"""

from __future__ import annotations

import logging

from dbdict_celery.errors import DbdictError, TableMissing
from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import DRIVE_STUDIES, app

log = logging.getLogger(__name__)

__all__ = ["drive_studies"]


@app.task(name=DRIVE_STUDIES)
def drive_studies(table: str | None = None) -> dict[str, str]:
    """One look at each detached study of `table` (default: the one DBDICT_DB names);
    returns what each look found, by study ("moved", "quiet", "complete"; "busy" if its
    driver is at work elsewhere; "failed: ..." if the look failed). Nothing while the
    table is not there yet."""
    try:
        store = JobStore.open(None, table, create=False)
    except TableMissing:  # a worker with -B started before anything was scheduled
        return {}
    found: dict[str, str] = {}
    for name in store.study_names():
        if not (store.study_definition(name) or {}).get("detached"):
            continue
        try:
            found[name] = _look(store, name)
        except Exception as error:  # one study's failure is not the others'
            log.error("study %s of %s: the look failed: %s", name, store.path, error,
                      exc_info=not isinstance(error, DbdictError))  # fmt: skip
            found[name] = f"failed: {error}"
    return found


def _look(store: JobStore, name: str) -> str:
    """One look at detached study `name`, if its lock is free and it is still detached."""
    from dbdict_celery.search.definition import Definition  # Optuna: only where it is used
    from dbdict_celery.search.driver import Driver, Look

    with store.driving(name) as lock:
        recorded = store.study_definition(name)  # read once held: as the last command left it
        if lock is None:
            return "busy"
        if recorded is None or not recorded.get("detached"):
            return "attached"
        driver = Driver(store, Definition.from_record(recorded))
        look = driver.step()
        if look is Look.COMPLETE:
            driver.detach(False)  # nothing left to drive: no more looks
        return look.value
