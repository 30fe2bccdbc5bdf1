"""Webhook delivery against a real HTTP server on 127.0.0.1: retries counted, failures recorded."""

from __future__ import annotations

import pytest

from orchestrator.alerting.webhook import Policy, deliver, retry_after_seconds
from tests.webhook_server import HANG, webhook_server

FAST = Policy(timeout_seconds=2.0, total_seconds=20.0, attempts=4)


class Sleeps(list):
    """The waits the retry policy asked for; none is slept."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.mark.parametrize(
    ("replies", "delivered", "attempts", "error_has"),
    [
        ([(200, {})], True, 1, None),
        ([(202, {})], True, 1, None),  # PagerDuty's "accepted"
        ([(500, {}), (200, {})], True, 2, None),
        ([(503, {}), (502, {}), (200, {})], True, 3, None),
        ([(500, {})], False, 4, "HTTP 500"),  # every attempt, then the record says why
        ([(400, {})], False, 1, "HTTP 400"),  # a bad request fails the same way again: no retry
        ([(403, {})], False, 1, "HTTP 403"),
        ([(404, {})], False, 1, "HTTP 404"),
        ([(301, {"Location": "http://127.0.0.1:9/elsewhere"})], False, 1, "redirect not followed"),
    ],
)
def test_delivery_retries_what_may_pass_and_records_what_did_not(replies, delivered, attempts, error_has):
    sleeps = Sleeps()
    with webhook_server(replies) as server:
        result = deliver("slack ops", server.url, [{"text": "hi"}], FAST, sleep=sleeps)
        assert len(server.bodies) == attempts  # the server saw exactly the attempts counted
    assert (result.delivered, result.attempts) == (delivered, attempts)
    assert len(sleeps) == attempts - 1
    if error_has is None:
        assert result.error is None
    else:
        assert error_has in result.error and f"after {attempts} attempt(s)" in result.error
        assert "SECRET-PATH" not in result.error  # the URL (Slack's secret) is never in the record


def test_429_waits_as_long_as_retry_after_says():
    sleeps = Sleeps()
    with webhook_server([(429, {"Retry-After": "3"}), (200, {})]) as server:
        result = deliver("pd", server.url, [{"x": 1}], FAST, sleep=sleeps)
    assert result.delivered and result.attempts == 2
    assert sleeps == [3.0]


def test_a_retry_after_past_the_cap_stops_at_once_and_says_so():
    sleeps = Sleeps()
    with webhook_server([(429, {"Retry-After": "120"}), (200, {})]) as server:
        result = deliver("pd", server.url, [{"x": 1}], FAST, sleep=sleeps)
        assert len(server.bodies) == 1
    assert not result.delivered and result.attempts == 1 and sleeps == []
    assert "HTTP 429" in result.error and "Retry-After 120 s" in result.error


def test_a_retry_after_longer_than_the_time_left_is_not_waited_for():
    sleeps = Sleeps()
    policy = Policy(timeout_seconds=2.0, total_seconds=5.0, attempts=4, max_retry_after=10.0)
    with webhook_server([(503, {"Retry-After": "8"}), (200, {})]) as server:
        result = deliver("pd", server.url, [{"x": 1}], policy, sleep=sleeps)
    assert not result.delivered and result.attempts == 1 and sleeps == []


def test_a_server_that_never_answers_times_out_on_every_attempt():
    sleeps = Sleeps()
    policy = Policy(timeout_seconds=0.3, total_seconds=20.0, attempts=2)
    with webhook_server([HANG]) as server:
        result = deliver("json", server.url, [{"x": 1}], policy, sleep=sleeps)
        assert len(server.bodies) == 2
    assert not result.delivered and result.attempts == 2
    assert "timeout" in result.error or "timed out" in result.error


def test_nothing_listening_is_a_connection_error_retried_then_recorded():
    with webhook_server([(200, {})]) as server:
        url = server.url
    sleeps = Sleeps()
    result = deliver("json", url, [{"x": 1}], Policy(attempts=3), sleep=sleeps)
    assert not result.delivered and result.attempts == 3
    assert "cannot connect" in result.error


def test_several_messages_stop_at_the_first_that_fails_and_say_which():
    with webhook_server([(202, {}), (400, {})]) as server:
        result = deliver("pd", server.url, [{"n": 1}, {"n": 2}, {"n": 3}], FAST, sleep=Sleeps())
        assert server.bodies == [{"n": 1}, {"n": 2}]
    assert not result.delivered and result.messages == 3
    assert result.error.startswith("message 2 of 3: HTTP 400") and "1 earlier message(s) were delivered" in result.error


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "Wed, 02 Dec 2026 10:00:30 GMT", "Date": "Wed, 02 Dec 2026 10:00:00 GMT"}, 30.0),
        ({"Retry-After": "Wed, 02 Dec 2026 09:00:00 GMT", "Date": "Wed, 02 Dec 2026 10:00:00 GMT"}, 0.0),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "Wed, 02 Dec 2026 10:00:30 GMT"}, None),  # a date with no Date to read it against
        ({}, None),
    ],
)
def test_retry_after_forms(headers, seconds):
    assert retry_after_seconds(headers) == seconds
