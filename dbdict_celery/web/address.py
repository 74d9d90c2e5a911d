"""The address a server listens on, as `--bind HOST:PORT` gives it."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from dbdict_celery.errors import UsageError


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Address:
        """`HOST:PORT`, `[IPV6]:PORT` or `:PORT` (loopback); one-line UsageError otherwise."""
        host, colon, port = text.rpartition(":")
        if not colon or not port.isdigit() or not 0 < int(port) < 65536:
            raise UsageError(f"--bind {text!r}: expected HOST:PORT, e.g. 127.0.0.1:8050")
        return cls(host.strip("[]") or "127.0.0.1", int(port))

    @property
    def is_loopback(self) -> bool:
        """Whether only this machine can connect (127.0.0.0/8, ::1 or localhost)."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:  # a host name: it may resolve to anything
            return False

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
