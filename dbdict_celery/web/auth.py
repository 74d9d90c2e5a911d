"""HTTP basic authentication for the dashboard: one user and password, given at start.

The dashboard shows what a job table holds (parameters, results, logs), so anything
listening beyond loopback must ask who is there. The check wraps the whole app, static
files and mounted apps included, and compares in constant time.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from dbdict_celery.errors import UsageError

REALM = "dbdict dashboard"


@dataclass(frozen=True)
class Credentials:
    """The one user and password the dashboard accepts."""

    user: str
    password: str = field(repr=False)  # never in a traceback or a log line

    @classmethod
    def parse(cls, text: str, what: str = "--basic-auth") -> Credentials:
        """`user:password` (the password may hold `:`); UsageError naming `what` otherwise."""
        user, colon, password = text.partition(":")
        if not colon or not user or not password:
            raise UsageError(f"{what} expects user:password, both non-empty")
        return cls(user, password)

    def accept(self, header: str | None) -> bool:
        """Whether an `Authorization` header carries these credentials."""
        scheme, _, encoded = (header or "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        expected = f"{self.user}:{self.password}".encode()
        return secrets.compare_digest(given, expected)


class BasicAuth:
    """ASGI middleware: a request without the credentials gets 401 and a challenge."""

    def __init__(self, app: ASGIApp, credentials: Credentials) -> None:
        self.app = app
        self.credentials = credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        found = headers.get(b"authorization")
        if self.credentials.accept(found.decode("latin-1") if found else None):
            await self.app(scope, receive, send)
            return
        await send({
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"www-authenticate", f'Basic realm="{REALM}", charset="UTF-8"'.encode()),
                (b"content-type", b"text/plain; charset=utf-8"),
            ],
        })  # fmt: skip
        await send({"type": "http.response.body", "body": b"authentication required\n"})
