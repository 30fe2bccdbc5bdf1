"""Shared test set-up: fake AWS credentials and a guard that keeps every test on loopback.

The guard wraps socket connect/sendto for the whole session: any attempt to reach an
address outside 127.0.0.0/8 (or ::1) fails the test that made it, so no test can
probe a private range or reach a real AWS endpoint, even by accident.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from typing import Any

import pytest

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    # pip runs in a subprocess the socket guard cannot see: no package index unless a
    # test deliberately points pip at local (file://) sources.
    "PIP_NO_INDEX": "1",
}.items():
    os.environ[_name] = _value
# The per-user config file `orch init` writes is read by every command: no test may read
# (or write) the developer's own, so the platform config directory is an empty one of ours.
# pip's own user config lives there too: tests/unit/test_package.py reads it through this.
USER_XDG_CONFIG_HOME = os.environ.get("XDG_CONFIG_HOME")
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="orch-test-config-")
for _name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
    os.environ.pop(_name, None)
for _name in [n for n in os.environ if n.startswith("ORCH_")]:
    os.environ.pop(_name, None)


class ForbiddenConnection(AssertionError):
    pass


def is_allowed_address(address: Any) -> bool:
    """True for loopback IPs and unix sockets; hostnames other than localhost are refused."""
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    if not isinstance(address, tuple) or not address:
        return False
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip in LOOPBACK or ip == ipaddress.ip_address("::1") or (
        isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None and ip.ipv4_mapped in LOOPBACK
    )


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_sendto = socket.socket.sendto


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not is_allowed_address(address):
        raise ForbiddenConnection(f"test tried to connect to {address!r}, outside 127.0.0.0/8")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not is_allowed_address(address):
        raise ForbiddenConnection(f"test tried to connect to {address!r}, outside 127.0.0.0/8")
    return _real_connect_ex(self, address)


def _guarded_sendto(self: socket.socket, data: Any, *args: Any) -> Any:
    address = args[-1]
    if not is_allowed_address(address):
        raise ForbiddenConnection(f"test tried to send to {address!r}, outside 127.0.0.0/8")
    return _real_sendto(self, data, *args)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.socket.sendto = _guarded_sendto  # type: ignore[method-assign,assignment]


@pytest.fixture(autouse=True)
def _no_forbidden_connections(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail loudly even when code under test swallows the guard's exception."""
    attempts: list[Any] = []

    def record(self: socket.socket, address: Any) -> Any:
        if not is_allowed_address(address):
            attempts.append(address)
        return _guarded_connect(self, address)

    def record_ex(self: socket.socket, address: Any) -> Any:
        if not is_allowed_address(address):
            attempts.append(address)
        return _guarded_connect_ex(self, address)

    monkeypatch.setattr(socket.socket, "connect", record)
    monkeypatch.setattr(socket.socket, "connect_ex", record_ex)
    yield
    assert not attempts, f"connections outside 127.0.0.0/8 were attempted: {attempts}"
