"""'No route from here' is not 'sshd dead': real sockets against real kernel routes.

Routes of type ``unreachable`` and ``prohibit`` added to the kernel's *local* table for
a /24 inside 127.0.0.0/8 make the kernel refuse the connect itself, exactly as a prober
outside the fleet's routes (EHOSTUNREACH) or behind its own firewall (EACCES) sees it.
Needs root with CAP_NET_ADMIN (as scripts/test and CI run); skipped otherwise. The
routes cover only these test /24s and are removed afterwards.
"""

from __future__ import annotations

import asyncio
import errno
import subprocess
from datetime import timedelta
from typing import Iterator

import pytest

from orchestrator.config import ProbeSettings
from orchestrator.decide.diagnose import diagnose
from orchestrator.decide.plan import fleet_view
from orchestrator.model import Facts, ProbeOutcome, VerdictKind
from orchestrator.observe.probe import connect_error_outcome, probe_fleet, probe_once, utc_now
from tests.builders import NOW, facts, instance, settings, status_ok

pytestmark = pytest.mark.e2e

UNREACHABLE_NET, UNREACHABLE_HOST = "127.213.7.0/24", "127.213.7.9"
PROHIBITED_NET, PROHIBITED_HOST = "127.213.8.0/24", "127.213.8.9"


def _ip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", "route", *args], capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def routes() -> Iterator[None]:
    added = []
    for kind, net in (("unreachable", UNREACHABLE_NET), ("prohibit", PROHIBITED_NET)):
        done = _ip("add", kind, net, "table", "local")
        if done.returncode != 0:
            for k, n in added:
                _ip("del", k, n, "table", "local")
            pytest.skip(f"cannot add a {kind} route on loopback here ({done.stderr.strip()}): needs root with CAP_NET_ADMIN")
        added.append((kind, net))
    try:
        yield
    finally:
        for kind, net in added:
            _ip("del", kind, net, "table", "local")


def attempt(host: str) -> ProbeOutcome:
    result = asyncio.run(probe_once(host, 22, connect_timeout=2.0, banner_timeout=0.5, max_bytes=4096, clock=utc_now))
    return result.outcome


def test_an_unreachable_route_is_no_route_not_a_failure(routes: None) -> None:
    outcome = attempt(UNREACHABLE_HOST)
    assert outcome is ProbeOutcome.NO_ROUTE and not outcome.is_failure


def test_a_local_firewall_refusal_is_no_route_not_a_failure(routes: None) -> None:
    outcome = attempt(PROHIBITED_HOST)
    assert outcome is ProbeOutcome.NO_ROUTE and not outcome.is_failure


def test_an_instance_behind_no_route_is_never_unreachable(routes: None) -> None:
    """All attempts fail the same way, status checks are ok: a box we cannot reach says nothing."""
    inst = instance(1)
    results = probe_fleet({inst.instance_id: UNREACHABLE_HOST}, ProbeSettings(attempts=2, retry_window=0.2, banner_timeout=0.5))
    probe = results[inst.instance_id]
    assert [a.outcome for a in probe.attempts] == [ProbeOutcome.NO_ROUTE, ProbeOutcome.NO_ROUTE]
    assert probe.failed_attempts == 0
    verdict = diagnose(Facts(instance=inst, status=status_ok(inst.instance_id), probe=probe), NOW + timedelta(minutes=1), settings())
    assert verdict.kind is VerdictKind.UNKNOWN and "no route from the prober" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("code", "outcome"),
    [
        (errno.EHOSTUNREACH, ProbeOutcome.NO_ROUTE),
        (errno.ENETUNREACH, ProbeOutcome.NO_ROUTE),
        (errno.EACCES, ProbeOutcome.NO_ROUTE),
        (errno.EPERM, ProbeOutcome.NO_ROUTE),
        (errno.EADDRNOTAVAIL, ProbeOutcome.ERROR),
        (errno.EMFILE, ProbeOutcome.ERROR),
    ],
)
def test_errno_classification(code: int, outcome: ProbeOutcome) -> None:
    assert connect_error_outcome(OSError(code, "x")) is outcome


def test_no_route_probes_do_not_count_as_probes_that_ran() -> None:
    """The fleet-wide "every probe failed" rule counts probes that ran: these did not."""
    fleet = [facts(instance(n), ProbeOutcome.NO_ROUTE) for n in range(3)] + [facts(instance(9))]
    by_id = {f.instance.instance_id: f for f in fleet}
    view = fleet_view(by_id, {i: diagnose(f, NOW, settings()) for i, f in by_id.items()})
    assert (view.running, view.probed, view.probes_failed, view.uncorroborated) == (4, 1, 0, 0)
