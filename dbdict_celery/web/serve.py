"""Serving the dashboard, and the rule that only loopback may go without a password.

A job table's parameters, results and logs are the user's own: on 127.0.0.1 only this
machine's users see them, but anything reachable from the network must ask for
credentials. This is checked before anything listens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dbdict_celery.errors import UsageError
from dbdict_celery.web.actions import check_actions
from dbdict_celery.web.address import Address
from dbdict_celery.web.auth import Credentials

if TYPE_CHECKING:
    from starlette.types import ASGIApp

DEFAULT_BIND = "127.0.0.1:8050"


def check_exposure(
    address: Address, credentials: Credentials | None, allow_actions: bool = False
) -> None:
    """Refuse to listen beyond loopback without credentials, and buttons without them."""
    check_actions(allow_actions, credentials is not None)
    if not address.is_loopback and credentials is None:
        raise UsageError(
            f"the dashboard would be open to the network on {address.host}: give "
            "--basic-auth USER:PASSWORD (or DBDICT_DASHBOARD_AUTH), or bind to 127.0.0.1"
        )


def serve(
    location: str | None,
    table: str | None,
    address: Address,
    credentials: Credentials | None,
    allow_actions: bool = False,
) -> None:
    """Serve the dashboard of the database at `location` until interrupted (Ctrl-C,
    SIGTERM); refused beyond loopback without credentials."""
    from dbdict_celery.web.app import dashboard_app

    check_exposure(address, credentials, allow_actions)
    run(dashboard_app(location, table, credentials, allow_actions), address)


def run(app: ASGIApp, address: Address) -> None:
    """Serve `app` at `address` with uvicorn until interrupted (Ctrl-C, SIGTERM)."""
    import uvicorn

    uvicorn.run(app, host=address.host, port=address.port, log_level="warning", access_log=False)
