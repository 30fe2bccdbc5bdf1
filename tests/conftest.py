"""Shared test set-up: fake AWS credentials and a guard that keeps every test on loopback.

The guard wraps socket connect/sendto for the whole session: any attempt to reach an
address outside 127.0.0.0/8 (or ::1) fails the test that made it, so no test can
probe a private range or reach a real AWS endpoint, even by accident.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import tempfile
from typing import Any

import botocore.loaders
import botocore.session
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
# The width of a terminal is a test's own choice (CliRunner's env, a pty's size): an
# xdist worker starts with COLUMNS=80, which a serial run does not have, and orch's
# console honours COLUMNS. No test inherits one.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)
for _name in [n for n in os.environ if n.startswith("ORCH_")]:
    os.environ.pop(_name, None)


class _SearchPaths(list):
    """A loader's search paths, where adding a path already there changes nothing."""

    def append(self, path: Any) -> None:
        if path not in self:
            super().append(path)


@functools.cache
def _shared_loader(search_path_string: str | None = None) -> botocore.loaders.Loader:
    loader = botocore.loaders.create_loader(search_path_string)
    loader._search_paths = _SearchPaths(loader.search_paths)  # boto3 appends its own on every Session
    return loader


# One botocore model loader for the whole test process. Every boto3.Session (a test's
# Clients, each CLI invocation's) otherwise parses the service models' JSON again: EC2's
# alone is megabytes, and it was a third of the AWS tier's time. The loader only reads the
# models shipped with botocore and caches what it parsed; nothing a test checks lives there.
botocore.session.create_loader = _shared_loader  # type: ignore[attr-defined]


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


# -- running in parallel (pytest-xdist, `scripts/test`: -n 2 --dist loadgroup) -----------------
#
# The unit and AWS tiers keep everything inside their own process (moto in-process or on a
# free port, temporary directories), so their files are spread over the workers. Most
# end-to-end modules share something outside the process: the sandbox's fleet addresses in
# 127.20.0.0/16, sandbox.env and .venv at the repository root, kernel routes, cgroups. They
# run on one worker, one after another, exactly as they did before the suite ran in parallel.
# A module that shares nothing outside its process is listed in PARALLEL_E2E instead.
#
# xdist's own groups (the xdist_group mark) rename each test's node id, which this pytest
# no longer lets a plugin do; the same grouping is made here with xdist's scheduler hook.
#
# The end-to-end modules that only build in-process sandboxes of their own and read nothing at
# the repository's root form a second group, run beside the first: their fleets live in
# another VPC (tests/e2e/sandbox_env.py, SECOND_VPC), so no address is shared.
SERIAL_GROUP = "serial"
SECOND_GROUP = "serial-second-vpc"
PARALLEL_E2E = frozenset({"test_probe_endpoints.py", "test_cli_probe.py", "test_wheel_install.py"})
SECOND_VPC_E2E = frozenset({"test_heal_sandbox.py", "test_table_fit.py", "test_terminal_fit.py", "test_top_terminal.py", "test_console.py"})


def work_unit(nodeid: str) -> str:
    """What one worker runs whole: one of the two end-to-end groups, or else the test's file."""
    path = nodeid.split("::", 1)[0]
    parts = path.split("/")
    if "e2e" in parts[:-1] and parts[-1] not in PARALLEL_E2E:
        return SECOND_GROUP if parts[-1] in SECOND_VPC_E2E else SERIAL_GROUP
    return path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadgroup":
        return None  # another --dist: xdist's own scheduler
    from xdist.scheduler import LoadScopeScheduling

    class SerialGroupScheduling(LoadScopeScheduling):
        """xdist's scope scheduling (largest unit first) over ``work_unit``'s units."""

        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    return SerialGroupScheduling(config, log)
