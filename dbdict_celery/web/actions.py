"""The dashboard's buttons (`dbdict dashboard --allow-actions`): cancel, requeue and a new
priority for one job, as `dbdict cancel`, `dbdict requeue` and `dbdict priority` do.

They exist only behind a password, and only for requests the dashboard's own pages
made. Basic authentication alone would not do: a browser that has the password sends
it with any request, a form posted from another site's page included. So each form
carries a token the dashboard made at start and never shows elsewhere, compared in
constant time, and a request that says it comes from another origin is refused.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from dbdict_celery.errors import UsageError

if TYPE_CHECKING:  # `dbdict --help` loads this module, and must not load SQLAlchemy
    from starlette.requests import Request

    from dbdict_celery.store.store import JobStore

ACTIONS = ("cancel", "requeue", "priority")


def check_actions(allow_actions: bool, password_asked: bool) -> None:
    """Refuse buttons that change jobs on a dashboard that asks no password."""
    if allow_actions and not password_asked:
        raise UsageError(
            "--allow-actions needs --basic-auth USER:PASSWORD (or DBDICT_DASHBOARD_AUTH): "
            "buttons that change jobs need a password"
        )


class Forbidden(Exception):
    """A request for an action the dashboard does not take from it (HTTP 403)."""


@dataclass(frozen=True)
class Actions:
    """Whether the buttons are on, and the token their forms carry."""

    token: str

    @classmethod
    def made(cls) -> Actions:
        return cls(secrets.token_urlsafe(32))

    def check(self, request: Request, token: str) -> None:
        """Refuse a request not made by one of this dashboard's pages."""
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            raise Forbidden("this form is not one of this dashboard's: reload the page")
        origin = request.headers.get("origin") or request.headers.get("referer")
        if origin and urlsplit(origin).netloc != request.headers.get("host"):
            raise Forbidden("a request from another site's page is refused")


def act(store: JobStore, job_id: int, action: str, priority: str | None) -> str:
    """Take `action` on job `job_id`; what happened, in one line."""
    from dbdict_celery.worker import control  # the broker: only when a button is pressed

    store.get(job_id)  # JobNotFound (404) for a job that is not there
    if action == "cancel":
        done = control.cancel(store, [job_id])
        if done.stopping:
            return f"job {job_id} was asked to stop: it saves and ends CANCELLED"
        return f"job {job_id} cancelled" if done.cancelled else f"job {job_id}: nothing to cancel"
    if action == "requeue":
        changed = control.requeue(store, [job_id])
        return f"job {job_id} requeued" if changed else f"job {job_id}: not requeued"
    if action == "priority":
        try:
            value = float(priority or "")
        except ValueError:
            raise UsageError(f"priority {priority!r} is not a number") from None
        moved = control.prioritize(store, value, [job_id]).jobs
        return f"job {job_id}: priority {value:g}" if moved else "only a waiting job changes"
    raise UsageError(f"no action {action!r}: use one of {', '.join(ACTIONS)}")
