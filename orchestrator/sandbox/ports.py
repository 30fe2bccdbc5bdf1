"""The fake sshd's port, checked before anything is built.

The endpoints bind each instance's own loopback address; the port is taken there when a
wildcard listener holds it (a real sshd on 0.0.0.0:22, anything on 0.0.0.0:2222) or when
another sandbox uses the same addresses. Finding out after the fleet is built wastes the
build (seconds at 50 instances, minutes at 10,000), so the first addresses of each subnet
are tried first, with the endpoints' own socket options. When the port is taken,
``choose`` takes a free one if the spec allows it and says so.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from itertools import islice

from orchestrator.sandbox.build import REPLACEMENT_HEADROOM, subnet_cidrs
from orchestrator.sandbox.spec import FleetSpec

SAMPLED_HOSTS = 8  # a few addresses a subnet: another sandbox starts at the same ones


def free_port() -> int:
    """A TCP port no wildcard listener holds; endpoints bind it on their own addresses."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("0.0.0.0", 0))
        return int(probe.getsockname()[1])


def taken(port: int, subnets: tuple[str, ...]) -> str | None:
    """Why ``port`` cannot be listened on at the subnets' first addresses, or None when it can."""
    for cidr in subnets:
        for host in islice(ipaddress.ip_network(cidr).hosts(), 4, 4 + SAMPLED_HOSTS):  # AWS keeps the first four
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the endpoints do
                try:
                    sock.bind((str(host), port))
                    sock.listen(1)
                except OSError as exc:
                    return f"{host}:{port}: {exc.strerror or exc}"
    return None


def choose(port: int, spec: FleetSpec) -> tuple[int, str]:
    """The port the fake sshd takes and what to tell about it: ``port``, or a free one when it
    is 0 (nothing to tell) or taken and the spec allows another (the note says why)."""
    if port == 0:
        return free_port(), ""
    per_subnet = (spec.standalone + 1) // 2 + spec.asg_members + spec.unmanaged + REPLACEMENT_HEADROOM
    why = taken(port, subnet_cidrs(spec.vpc_cidr, per_subnet))
    if why is None:
        return port, ""
    if not spec.port_fallback:
        raise OSError(errno.EADDRINUSE, f"the fake sshd's port {port} is taken ({why}): give another --port, or --port 0 for a free one")
    chosen = free_port()
    return chosen, f"port {port} is taken ({why}): the fake sshd listens on port {chosen} instead"
