"""The probe against real sockets on loopback: every outcome and the hostile servers."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config import ProbeSettings
from orchestrator.model import ProbeAttempt, ProbeOutcome
from orchestrator.observe import probe as probe_module
from orchestrator.observe.probe import (
    Target,
    probe_fleet,
    probe_fleet_async,
    probe_once,
    utc_now,
)
from tests.e2e.fake_endpoints import (
    BANNER,
    Behaviour,
    EndpointLoop,
    chunks,
    close_at_once,
    drip,
    endless_lines,
    full_backlog,
    refusing_socket,
    reset_at_once,
    sends,
    silent,
)

ROOT = Path(__file__).resolve().parents[2]
O = ProbeOutcome


# Timeouts that an answering endpoint never waits for are generous: a banner arrives at once,
# so a long timeout costs nothing when it works, and a loaded machine (two cores, several
# suites) cannot turn an answer into a timeout. Tests of timing out pass short ones.
ANSWERS_WITHIN = 10.0


def probe(host: str, port: int, *, connect_timeout: float = 2.0, banner_timeout: float = ANSWERS_WITHIN, max_bytes: int = 8192) -> ProbeAttempt:
    return asyncio.run(
        probe_once(host, port, connect_timeout=connect_timeout, banner_timeout=banner_timeout, max_bytes=max_bytes, clock=utc_now)
    )


def client_sockets(*ports: int) -> int:
    """Our sockets connected to ``ports``; the fake servers' own ends (same process) do not count."""
    count = 0
    for name in os.listdir("/proc/self/fd"):
        try:
            with socket.fromfd(int(name), socket.AF_INET, socket.SOCK_STREAM) as dup:
                count += dup.getpeername()[1] in ports
        except (OSError, IndexError, TypeError):
            continue  # not a connected socket
    return count


def monotonic_clock() -> datetime:
    """Wall time can step; spacing assertions need the clock the scheduler uses."""
    return datetime(2030, 1, 1, tzinfo=timezone.utc) + timedelta(seconds=time.monotonic())


@pytest.mark.parametrize(
    ("behaviour", "host", "outcome", "detail"),
    [
        (sends(BANNER), "127.0.0.1", O.OK, ""),
        (sends(b"SSH-1.99-Cisco-1.25\r\n"), "127.0.0.2", O.OK, ""),
        (sends(b"Welcome\r\n\r\nSSH-2.0-Fake\r\n"), "127.0.0.3", O.OK, ""),
        (sends(b"SSH-1.5-Ancient\r\n"), "127.0.0.2", O.NOT_SSH, "protocol 1"),
        (sends(b"220 mail.example ESMTP\r\n"), "127.0.0.4", O.NOT_SSH, "220 mail.example"),
        (sends(b"HTTP/1.1 400 Bad Request\r\n\r\n", then_close=True), "127.0.0.1", O.NOT_SSH, "closed after"),
        (sends(b"\xff\xfe\x00\x80garbage", then_close=True), "127.0.0.1", O.NOT_SSH, "closed after"),
        (sends(b"x" * 300 + b"\r\nSSH-2.0-Late\r\n"), "127.0.0.5", O.NOT_SSH, "255"),
        (endless_lines(), "127.0.0.6", O.NOT_SSH, "first 8192 bytes"),
        (close_at_once, "127.0.0.7", O.RESET, "without sending"),
        (reset_at_once, "127.0.0.8", O.RESET, "ECONNRESET"),
        (sends(b"Exceeded MaxStartups\r\n", then_close=True), "127.0.0.8", O.RESET, "MaxStartups"),
        (silent, "127.0.0.9", O.BANNER_TIMEOUT, "no bytes"),
    ],
    ids=["ok", "ssh-1.99", "lines-first", "ssh-1.5", "smtp", "http-close", "binary-close", "long-line",
         "endless-lines", "accept-close", "reset", "sshd-shedding", "silent"],
)
def test_outcomes(endpoints: EndpointLoop, behaviour: Behaviour, host: str, outcome: ProbeOutcome, detail: str) -> None:
    # Some of these wait out the timeout (silence, an SMTP greeting that stays open): 2 s,
    # long enough that a loaded machine still delivers what was sent before it ends.
    attempt = probe(host, endpoints.serve(behaviour, host), banner_timeout=ANSWERS_WITHIN if outcome is O.OK else 2.0)
    assert attempt.outcome is outcome, attempt
    assert detail in attempt.detail
    assert (attempt.banner is not None) == (outcome is O.OK)
    assert attempt.latency_s >= 0


def test_ok_banner_is_stripped(endpoints: EndpointLoop) -> None:
    attempt = probe("127.0.0.1", endpoints.serve(sends(BANNER)))
    assert attempt.banner == BANNER.decode().strip()


def test_non_utf8_banner_does_not_crash(endpoints: EndpointLoop) -> None:
    attempt = probe("127.0.0.1", endpoints.serve(sends(b"\xc3\x28 hi\r\nSSH-2.0-Od\xffd\r\n")))
    assert attempt.outcome is O.OK and attempt.banner == "SSH-2.0-Od\ufffdd"


def test_banner_split_across_packets(endpoints: EndpointLoop) -> None:
    parts = [(b"S", 0.02), (b"SH-2", 0.02), (b".0-Split", 0.02), (b"ty\r", 0.02), (b"\n", 0.0)]
    attempt = probe("127.0.0.1", endpoints.serve(chunks(parts)), banner_timeout=3.0)
    assert attempt.outcome is O.OK and attempt.banner == "SSH-2.0-Splitty"


def test_refused() -> None:
    sock = refusing_socket("127.0.0.2")
    try:
        attempt = probe("127.0.0.2", sock.getsockname()[1])
    finally:
        sock.close()
    assert attempt.outcome is O.REFUSED


def test_connect_timeout() -> None:
    listener, fillers = full_backlog("127.0.0.3")
    try:
        attempt = probe("127.0.0.3", listener.getsockname()[1], connect_timeout=0.2)
    finally:
        for sock in (listener, *fillers):
            sock.close()
    assert attempt.outcome is O.CONNECT_TIMEOUT


def test_drip_tarpit_is_cut_by_the_total_deadline(endpoints: EndpointLoop) -> None:
    # At 20 ms a byte the 8192-byte cap would take minutes; a per-read timeout would never fire.
    attempt = probe("127.0.0.4", endpoints.serve(drip(b"xyzzy\r\n", 0.02), "127.0.0.4"), banner_timeout=0.4)
    assert attempt.outcome is O.NOT_SSH
    assert "before the deadline" in attempt.detail
    assert attempt.latency_s < 5  # bounded by the deadline, nowhere near the cap


def test_banner_dripping_too_slowly_is_a_banner_timeout(endpoints: EndpointLoop) -> None:
    attempt = probe("127.0.0.4", endpoints.serve(drip(b"SSH-2.0-OpenSSH_9.2\r\n", 0.1), "127.0.0.4"), banner_timeout=0.4)
    assert attempt.outcome is O.BANNER_TIMEOUT
    assert "unfinished" in attempt.detail


def test_cancellation_closes_the_socket(endpoints: EndpointLoop) -> None:
    accepted = threading.Event()

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set()
        await reader.read()

    port = endpoints.serve(hold)

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(
            probe_once("127.0.0.1", port, connect_timeout=2, banner_timeout=60, max_bytes=8192, clock=utc_now)
        )
        assert await asyncio.get_running_loop().run_in_executor(None, accepted.wait, 5)
        during = client_sockets(port)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return during, client_sockets(port)

    assert asyncio.run(scenario()) == (1, 0)


# --- the fleet -------------------------------------------------------------------


def fast(**overrides: Any) -> ProbeSettings:
    values: dict[str, Any] = {"connect_timeout": 2.0, "banner_timeout": ANSWERS_WITHIN, "attempts": 3, "retry_window": 0.3}
    return ProbeSettings(**(values | overrides))


def test_fleet_classifies_each_target(endpoints: EndpointLoop) -> None:
    refused = refusing_socket("127.0.0.3")
    try:
        targets = {
            "i-ok": ("127.0.0.1", endpoints.serve(sends(BANNER))),
            "i-silent": ("127.0.0.2", endpoints.serve(silent, "127.0.0.2")),
            "i-refused": ("127.0.0.3", refused.getsockname()[1]),
            "i-noip": None,
        }
        results = probe_fleet(targets, fast(attempts=2, retry_window=0.1, banner_timeout=2.0))  # the silent one waits it out
    finally:
        refused.close()
    assert list(results) == list(targets)
    assert {k: r.outcome for k, r in results.items()} == {
        "i-ok": O.OK, "i-silent": O.BANNER_TIMEOUT, "i-refused": O.REFUSED, "i-noip": O.NO_ADDRESS,
    }
    assert [len(results[k].attempts) for k in targets] == [1, 2, 2, 1]
    assert results["i-noip"].failed_attempts == 0


def test_plain_host_uses_the_settings_port(endpoints: EndpointLoop) -> None:
    port = endpoints.serve(sends(BANNER), "127.0.0.5")
    results = probe_fleet({"i-1": "127.0.0.5"}, fast(port=port))
    assert results["i-1"].outcome is O.OK


def test_refused_twice_then_answers(endpoints: EndpointLoop) -> None:
    """A listener that only comes up before the third attempt: three attempts, then OK."""
    sock = refusing_socket("127.0.0.6")
    sleeps: list[float] = []

    async def sleep(delay: float) -> None:
        sleeps.append(delay)
        if len(sleeps) == 2:
            endpoints.serve_on(sock, sends(BANNER))  # listen() only now; the server owns the socket
        await asyncio.sleep(delay)

    try:
        result = probe_fleet({"i-1": ("127.0.0.6", sock.getsockname()[1])}, fast(), sleep=sleep)["i-1"]
    finally:
        if len(sleeps) < 2:
            sock.close()
    assert [a.outcome for a in result.attempts] == [O.REFUSED, O.REFUSED, O.OK]
    assert result.outcome is O.OK and result.ok_latency_s is not None
    assert len(sleeps) == 2 and all(0 < s <= 0.15 for s in sleeps)


def test_dropped_twice_then_answers(endpoints: EndpointLoop) -> None:
    """sshd's MaxStartups drops look like this: accepted, then reset."""
    counter = itertools.count()

    async def drop_two(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if next(counter) < 2:
            await reset_at_once(reader, writer)
        else:
            await sends(BANNER)(reader, writer)

    result = probe_fleet({"i-1": ("127.0.0.7", endpoints.serve(drop_two, "127.0.0.7"))}, fast())["i-1"]
    assert [a.outcome for a in result.attempts] == [O.RESET, O.RESET, O.OK]


def test_hung_target_fails_three_times_across_the_window(endpoints: EndpointLoop) -> None:
    port = endpoints.serve(silent, "127.0.0.8")
    result = probe_fleet({"i-1": ("127.0.0.8", port)}, fast(banner_timeout=0.1), clock=monotonic_clock)["i-1"]
    assert [a.outcome for a in result.attempts] == [O.BANNER_TIMEOUT] * 3
    assert result.failed_attempts == 3
    assert result.failure_span_s >= 0.3 - 0.001  # attempt k starts no earlier than first + k * window/2


def test_ok_target_is_probed_once(endpoints: EndpointLoop) -> None:
    result = probe_fleet({"i-1": ("127.0.0.1", endpoints.serve(sends(BANNER)))}, fast(attempts=5))["i-1"]
    assert len(result.attempts) == 1


def counting_probes(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Wrap probe_once to record the most attempts ever in flight at once."""
    real = probe_module.probe_once
    count = {"now": 0, "peak": 0}

    async def counting(*args: Any, **kwargs: Any) -> ProbeAttempt:
        count["now"] += 1
        count["peak"] = max(count["peak"], count["now"])
        try:
            return await real(*args, **kwargs)
        finally:
            count["now"] -= 1

    monkeypatch.setattr(probe_module, "probe_once", counting)
    return count


def silent_fleet(endpoints: EndpointLoop, hosts: int, per_host: int, subnet: str = "127.0.2") -> dict[str, Target]:
    addresses = [(f"{subnet}.{n}", endpoints.serve(silent, f"{subnet}.{n}")) for n in range(1, hosts + 1)]
    return {f"i-{h}-{k}": address for h, address in enumerate(addresses) for k in range(per_host)}


def test_open_probes_never_exceed_concurrency(endpoints: EndpointLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    count = counting_probes(monkeypatch)
    results = probe_fleet(silent_fleet(endpoints, hosts=10, per_host=3), fast(concurrency=7, attempts=2, banner_timeout=0.05))
    assert count["peak"] == 7
    assert all(len(r.attempts) == 2 for r in results.values())


def test_one_endpoint_is_never_flooded(endpoints: EndpointLoop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Many targets on one sshd would trip its MaxStartups: the prober itself would cause drops."""
    count = counting_probes(monkeypatch)
    probe_fleet(silent_fleet(endpoints, hosts=1, per_host=12), fast(concurrency=50, attempts=1, banner_timeout=0.05))
    assert count["peak"] == probe_module.PER_ENDPOINT


def test_thousands_of_healthy_targets_in_one_round(endpoints: EndpointLoop) -> None:
    addresses = [(f"127.0.1.{n}", endpoints.serve(sends(BANNER), f"127.0.1.{n}")) for n in range(1, 61)]
    targets = {f"i-{n:05d}": addresses[n % len(addresses)] for n in range(3000)}
    results = probe_fleet(targets, ProbeSettings(concurrency=200))
    assert all(r.outcome is O.OK and len(r.attempts) == 1 for r in results.values())


def test_cancelling_the_fleet_cancels_every_probe(endpoints: EndpointLoop) -> None:
    targets = silent_fleet(endpoints, hosts=10, per_host=2, subnet="127.0.3")
    ports = {address[1] for address in targets.values() if isinstance(address, tuple)}

    async def scenario() -> tuple[int, int]:
        task = asyncio.create_task(probe_fleet_async(targets, fast(banner_timeout=30, concurrency=8)))
        while client_sockets(*ports) < 8:  # every slot connected and waiting for a banner
            await asyncio.sleep(0.01)
        during = client_sockets(*ports)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return during, client_sockets(*ports)

    assert asyncio.run(asyncio.wait_for(scenario(), 10)) == (8, 0)


# --- a process short of file descriptors ---------------------------------------------

CHILD = """
import asyncio, json, os, resource, sys
sys.path.insert(0, sys.argv[1])
import tests.conftest  # the loopback guard holds in the child too
from orchestrator.config import ProbeSettings
from orchestrator.observe.probe import probe_fleet, probe_fleet_async

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
endpoints = json.loads(sys.argv[2])
targets = {f"t{n:03d}": tuple(endpoints[n % len(endpoints)]) for n in range(200)}
settings = ProbeSettings(concurrency=150, attempts=3, retry_window=0.2, connect_timeout=5, banner_timeout=5)

def summary(results):
    return {k: [r.outcome.value, len(r.attempts), r.failed_attempts, r.last.detail] for k, r in results.items()}

roomy = probe_fleet(targets, settings)

async def starved():
    hog = []
    try:
        while True:
            hog.append(os.open(os.devnull, os.O_RDONLY))
    except OSError:
        pass
    try:
        return await probe_fleet_async(dict(list(targets.items())[:20]), settings)
    finally:
        for fd in hog:
            os.close(fd)

print(json.dumps({"roomy": summary(roomy), "starved": summary(asyncio.run(starved()))}))
"""


def test_low_file_descriptor_limit(endpoints: EndpointLoop) -> None:
    hosts = [f"127.0.4.{n}" for n in range(1, 9)]
    addresses = [[h, endpoints.serve(sends(BANNER), h)] for h in hosts]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(ROOT), json.dumps(addresses)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    roomy, starved = report["roomy"], report["starved"]
    assert len(roomy) == 200
    # 150 requested, 64 fds: the prober clamps itself instead of failing probes.
    assert all(outcome == "ok" for outcome, *_ in roomy.values()), roomy
    # No descriptor left at all: every probe is ERROR ("could not probe"), retried, never a failure.
    assert len(starved) == 20
    for outcome, attempts, failed, detail in starved.values():
        assert (outcome, attempts, failed) == ("error", 3, 0)
        assert "EMFILE" in detail
