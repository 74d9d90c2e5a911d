"""Test hosts on one machine: network namespaces, each joined to a bridge by a veth pair.

The bridge lives in this (the root) namespace and holds the gateway address,
where the servers the hosts share (Postgres, Redis, PgBouncer) listen; the
test process reaches them there too, as a head node would. Each host is a
namespace of its own with one link and one address on the bridge's subnet, so
everything a host says to a server or to another host crosses a real (virtual)
network: cut its link (`ip link set ... down`) and its connections hang, as
across a partition, with nothing refused; heal it and they carry on.

Names carry this process's id, so two runs never meet; the subnet is one no
interface of this machine is on. Everything made here is removed by `remove()`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SUBNETS = ipaddress.IPv4Network("10.213.0.0/16")  # picked from, a /24 per network
_LEFTOVER = re.compile(r"dbd(?P<pid>\d+)(?:-\w+|(?P<link>br|h\d+)(?:@\w+)?)")  # a namespace, a link


class NetworkUnavailable(Exception):
    """Network namespaces cannot be made here (not root, no iproute2, a locked-down kernel)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=60, check=False)
    if check and done.returncode != 0:
        raise NetworkUnavailable(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done


@dataclass(frozen=True)
class Host:
    """A test host: a network namespace, its address, and the root end of its link."""

    name: str  # also the hostname its processes see
    namespace: str
    address: str
    link: str

    @property
    def inside(self) -> list[str]:
        """The prefix that runs a command in this host's namespace."""
        return ["ip", "netns", "exec", self.namespace]

    def command(self, *argv: str) -> list[str]:
        """`argv` run on this host: in its namespace, under its own hostname."""
        return [*self.inside, "unshare", "--uts", "--", sys.executable, "-m",
                "tests.cluster.named", self.name, *argv]  # fmt: skip

    def pids(self) -> set[int]:
        """Every process running on this host (in its namespace)."""
        done = _ip("netns", "pids", self.namespace, check=False)
        return {int(pid) for pid in done.stdout.split()}


class Network:
    """A bridge with the gateway address, and the hosts added to it."""

    def __init__(self) -> None:
        if os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("unshare") is None:
            raise NetworkUnavailable("network namespaces need root, iproute2 and unshare")
        _remove_leftovers()
        self.tag = f"dbd{os.getpid() % 100_000}"
        self.subnet = _free_subnet()
        self.gateway = str(self.subnet[1])
        self.bridge = f"{self.tag}br"
        self.hosts: list[Host] = []
        _ip("link", "add", self.bridge, "type", "bridge")
        try:
            _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", self.bridge)
            _ip("link", "set", self.bridge, "up")
        except NetworkUnavailable:
            self.remove()
            raise

    def add_host(self, name: str) -> Host:
        """A new namespace named after `name`, linked to the bridge with the next address."""
        number = len(self.hosts) + 1
        host = Host(name, f"{self.tag}-{name}", str(self.subnet[10 + number]),
                    f"{self.tag}h{number}")  # fmt: skip
        self.hosts.append(host)
        inside = f"{host.link}p"
        _ip("netns", "add", host.namespace)
        _ip("link", "add", host.link, "type", "veth", "peer", "name", inside,
            "netns", host.namespace)  # fmt: skip
        _ip("link", "set", host.link, "master", self.bridge)
        _ip("link", "set", host.link, "up")
        for args in (("addr", "add", f"{host.address}/{self.subnet.prefixlen}", "dev", inside),
                     ("link", "set", inside, "up"), ("link", "set", "lo", "up")):  # fmt: skip
            _ip("-n", host.namespace, *args)
        return host

    def cut(self, host: Host) -> None:
        """Take the host's link down: its packets go nowhere, in both directions."""
        _ip("link", "set", host.link, "down")

    def heal(self, host: Host) -> None:
        _ip("link", "set", host.link, "up")

    def kill(self, host: Host) -> None:
        """The host dies: every process on it SIGKILLed at once, its link down (a dead
        machine answers nothing, not even with a reset)."""
        self.cut(host)
        for pid in host.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self) -> None:
        for host in self.hosts:
            self.kill(host)
            _ip("link", "del", host.link, check=False)
            _ip("netns", "del", host.namespace, check=False)
        _ip("link", "del", self.bridge, check=False)


def _remove_leftovers() -> None:
    """Remove the namespaces and bridges of earlier runs whose process is gone (killed
    before it could clean up): their names and subnets would stay taken for nothing."""
    names = _ip("netns", "list").stdout.split() + _ip("-o", "link", "show").stdout.split()
    for name in names:
        found = _LEFTOVER.fullmatch(name.rstrip(":"))
        if found is None or Path(f"/proc/{found['pid']}").exists():
            continue
        if found["link"]:
            _ip("link", "del", found[0].partition("@")[0], check=False)
            continue
        for pid in _ip("netns", "pids", found[0], check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        _ip("netns", "del", found[0], check=False)


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of SUBNETS that no address of this machine is in (nor a route goes to)."""
    used = _ip("-o", "-4", "addr", "show").stdout + _ip("-4", "route", "show").stdout
    taken = {ipaddress.ip_network(word, strict=False) for word in used.split()
             if "/" in word and word[0].isdigit()}  # fmt: skip
    candidates = list(SUBNETS.subnets(new_prefix=24))
    start = os.getpid() % len(candidates)
    for offset in range(len(candidates)):
        subnet = candidates[(start + offset) % len(candidates)]
        if not any(subnet.overlaps(other) for other in taken):
            return subnet
    raise NetworkUnavailable(f"every /24 of {SUBNETS} is in use on this machine")


@contextlib.contextmanager
def network() -> Iterator[Network]:
    """A network to add test hosts to, removed afterwards; skips saying why where
    namespaces cannot be made."""
    try:
        made = Network()
    except NetworkUnavailable as error:
        pytest.skip(f"no test hosts on this machine: {error}")
    try:
        yield made
    finally:
        made.remove()
