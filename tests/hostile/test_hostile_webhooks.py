"""Hostile webhook peers (issue 20, cases 5 and 6): whatever answers, delivery ends, is recorded, never raises.

Every server here listens on 127.0.0.1. Timing is asserted nowhere: the drip test uses
a short real deadline and checks only that delivery ended and said why.
"""

from __future__ import annotations

import threading

import pytest

from orchestrator.alerting.webhook import Policy, deliver
from tests.hostile import servers

ONE_TRY = Policy(timeout_seconds=1.0, total_seconds=2.0, attempts=1)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    ("script", "error_has"),
    [
        pytest.param(servers.sends(servers.SSHD_BANNER, read_first=False), "not HTTP", id="sshd-banner"),
        pytest.param(servers.sends(servers.GARBAGE_STATUS), "not HTTP", id="garbage-status-line"),
        pytest.param(servers.sends(servers.MANY_HEADERS), "not HTTP", id="over-100-headers"),
        pytest.param(servers.sends(servers.LONG_HEADER), "not HTTP", id="64k-header-line"),
        pytest.param(servers.sends(servers.BAD_CHUNKED), "not HTTP", id="bad-chunked-body"),
        pytest.param(servers.sends(servers.SHORT_BODY), "", id="body-shorter-than-its-length"),
    ],
)
def test_case_5_a_webhook_that_does_not_speak_http_is_a_recorded_failure(script, error_has):
    with servers.tcp_server(script) as url:
        result = deliver("ops", url, [{"text": "hi"}], ONE_TRY, sleep=Sleeps())
    assert not result.delivered and result.attempts == 1
    assert error_has in result.error
    assert "SECRET-PATH" not in result.error and "127.0.0.1" not in result.error


def test_case_6_a_webhook_that_drips_a_byte_at_a_time_is_bounded_as_a_whole():
    # Each byte comes well inside the per-read timeout: only a deadline over the whole request ends it.
    policy = Policy(timeout_seconds=0.5, total_seconds=0.5, attempts=1)
    with servers.tcp_server(servers.drips(servers.DRIP_HEADERS, every=0.02)) as url:
        result = deliver("ops", url, [{"text": "hi"}], policy, sleep=Sleeps())
        _the_request_threads_end()
    assert not result.delivered and result.attempts == 1
    assert "timeout" in result.error and "SECRET-PATH" not in result.error


def test_case_6_a_dripping_webhook_is_retried_within_its_total_and_not_past_it():
    sleeps = Sleeps()
    clock = iter(float(n) for n in range(100))  # an injected monotonic: one second per reading
    policy = Policy(timeout_seconds=0.3, total_seconds=3.0, attempts=10)
    with servers.tcp_server(servers.drips(servers.DRIP_HEADERS, every=0.02)) as url:
        result = deliver("ops", url, [{"text": "hi"}], policy, sleep=sleeps, monotonic=lambda: next(clock))
    assert not result.delivered and 1 <= result.attempts < 10


def test_case_5_a_poster_that_raises_anything_is_a_failure_not_an_exception():
    def broken(url, payload, timeout):
        raise RuntimeError(f"boom at {url}")

    result = deliver("ops", "https://hooks.example/SECRET-PATH", [{"x": 1}], ONE_TRY, sleep=Sleeps(), post=broken)
    assert not result.delivered and "RuntimeError" in result.error and "SECRET-PATH" not in result.error


def test_case_6_an_https_webhook_that_drips_its_handshake_is_bounded_too():
    # Bytes that never finish a TLS ServerHello, one at a time: the whole request, handshake included, is bounded.
    hello = b"\x16\x03\x03\x40\x00\x02\x00\x3f\xfc" + b"\x03" * 4000
    with servers.tcp_server(servers.drips(hello, every=0.02, read_first=False)) as url:
        url = url.replace("http://", "https://")
        result = deliver("ops", url, [{"text": "hi"}], Policy(0.5, 0.5, 1), sleep=Sleeps())
        assert not result.delivered and "timeout" in result.error and "SECRET-PATH" not in result.error
        _the_request_threads_end()


def _the_request_threads_end() -> None:
    """The deadline shut the socket: the request's thread ends instead of reading on (checked while the peer still drips)."""
    for thread in [t for t in threading.enumerate() if t.name == "orch-webhook"]:
        thread.join(10)
        assert not thread.is_alive()
