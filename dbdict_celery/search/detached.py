"""Detached studies (`dbdict optimize --detach`): driven by the workers, not by a command.

Celery beat sends `drive_studies` every `DBDICT_DRIVE_INTERVAL` seconds; the worker that
runs it takes one look at each detached study of the table (tell what ended, prune, ask
for new trials), as the command's driver would. The study is rebuilt from the table at
each look: nothing is kept between them. A study whose driver is at work elsewhere (its
command run again, or another look still going) is left to it.
"""

from __future__ import annotations

from dbdict_celery.store.store import JobStore
from dbdict_celery.worker.app import DRIVE_STUDIES, app

__all__ = ["drive_studies"]


@app.task(name=DRIVE_STUDIES)
def drive_studies(table: str | None = None) -> dict[str, str]:
    """One look at each detached study of `table` (default: the one DBDICT_DB names);
    returns what each look found, by study ("moved", "quiet", "complete"; "busy" if its
    driver is at work elsewhere)."""
    from dbdict_celery.search.definition import Definition  # Optuna: only where it is used
    from dbdict_celery.search.driver import Driver, Look

    store = JobStore.open(None, table, create=False)
    found: dict[str, str] = {}
    for name in store.study_names():
        recorded = store.study_definition(name)
        if recorded is None or not recorded.get("detached"):
            continue
        with store.driving(name) as held:
            if not held:
                found[name] = "busy"
                continue
            driver = Driver(store, Definition.from_record(recorded))
            look = driver.step()
            if look is Look.COMPLETE:
                driver.detach(False)  # nothing left to drive: no more looks
            found[name] = look.value
    return found
