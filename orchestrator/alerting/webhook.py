"""POSTing composed JSON to a webhook target, with bounded retries and a clear record.

Delivery never raises: it returns a ``Delivery`` saying whether the target took the
message, after how many attempts, and if not, why (the status and the reason), so the
sweep can record it and go on; SNS and the action records never wait on a webhook.

Retried (tenacity): connection errors and timeouts, 429 and 5xx, honouring a
``Retry-After`` (seconds, or an HTTP date read against the response's own ``Date``, so
no wall clock is read) up to ``max_retry_after``; a wait that would not fit in the
time left stops the retries at once. Not retried: any other 4xx (a bad URL, a wrong
routing key: the same request fails the same way) and redirects, which are not
followed (a webhook that moved is a configuration to fix, and following it would send
the body somewhere nobody configured). Only http(s) URLs are accepted (config.py).

stdlib urllib, not requests: the Lambda zip stays small and this is one POST.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Mapping

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay, wait_exponential_jitter

from orchestrator.alerting import formats as alert_formats
from orchestrator.config import WebhookTarget
from orchestrator.echo import clip

USER_AGENT = "orch-webhook/1"
MAX_RETRY_AFTER_SECONDS = 10.0  # a longer Retry-After is not waited for within a sweep
REASON_CHARS = 200


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one message to one target: the record the sweep keeps."""

    target: str  # the target's label: never its URL (a Slack webhook URL is a secret)
    delivered: bool
    attempts: int
    error: str | None = None
    messages: int = 1  # JSON bodies POSTed (PagerDuty: one per event)

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "delivered": self.delivered, "attempts": self.attempts, "messages": self.messages, "error": self.error}


class RetryableFailure(Exception):
    """A failure the same request may not meet again: connection, timeout, 429, 5xx."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class Refused(Exception):
    """The target answered no for good (4xx other than 429, a redirect): retrying would not help."""


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(_NoRedirects())


def retry_after_seconds(headers: Mapping[str, str] | Any) -> float | None:
    """Retry-After as seconds: delta-seconds, or an HTTP date against the response's Date header."""
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(str(headers.get("Date") or ""))
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, (when - sent).total_seconds())


def _reason(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return "no answer in time (timeout)"
    return f"{type(exc).__name__}: {exc}"


def post_json(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    """One POST; returns the 2xx status or raises RetryableFailure / Refused."""
    data = json.dumps(payload, separators=(",", ":")).encode()
    request = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
    )
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            response.read(65_536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        with exc:
            if exc.code == 429 or exc.code >= 500:
                raise RetryableFailure(_reason(exc), retry_after_seconds(exc.headers)) from None
            if 300 <= exc.code < 400:
                raise Refused(f"HTTP {exc.code} redirect not followed: point the webhook at its final URL") from None
            raise Refused(_reason(exc)) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        raise RetryableFailure(_reason(exc)) from None


@dataclass(frozen=True, slots=True)
class Policy:
    timeout_seconds: float = 5.0  # one request
    total_seconds: float = 20.0  # every attempt of one message, waits included
    attempts: int = 4
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS


Poster = Callable[[str, Mapping[str, Any], float], int]


def _wait(retry_state: RetryCallState) -> float:
    exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
    if isinstance(exc, RetryableFailure) and exc.retry_after is not None:
        return exc.retry_after
    return float(_BACKOFF(retry_state))


_BACKOFF = wait_exponential_jitter(multiplier=0.5, max=4.0, jitter=0.5)


def deliver(
    target: str,
    url: str,
    payloads: list[dict[str, Any]],
    policy: Policy,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
    post: Poster = post_json,
) -> Delivery:
    """POST each payload in turn; the first one that cannot be delivered ends the delivery."""
    attempts = 0
    started = monotonic()
    for index, payload in enumerate(payloads):
        left = policy.total_seconds - (monotonic() - started)
        counted: list[int] = []

        def too_long(retry_state: RetryCallState, left: float = left) -> bool:
            """Stop at once when the wait asked (Retry-After) would not fit the time left, or passes the cap."""
            exc = retry_state.outcome.exception() if retry_state.outcome is not None else None
            if isinstance(exc, RetryableFailure) and exc.retry_after is not None:
                return exc.retry_after > policy.max_retry_after or retry_state.seconds_since_start + exc.retry_after >= left
            return False

        def one(payload: dict[str, Any] = payload, left: float = left) -> int:
            counted.append(1)
            remaining = left - (monotonic() - call_started)
            return post(url, payload, max(0.1, min(policy.timeout_seconds, remaining)))

        retrying = Retrying(
            retry=retry_if_exception_type(RetryableFailure),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(max(0.0, left)) | too_long,
            wait=_wait,
            sleep=sleep,
            reraise=True,
        )
        call_started = monotonic()
        try:
            retrying(one)
        except RetryableFailure as exc:
            attempts += len(counted)
            why = str(exc)
            if exc.retry_after is not None and exc.retry_after > 0:
                why += f" (Retry-After {exc.retry_after:g} s)"
            return Delivery(target, False, attempts, _failed(why, len(counted), index, len(payloads)), len(payloads))
        except Refused as exc:
            attempts += len(counted)
            return Delivery(target, False, attempts, _failed(str(exc), len(counted), index, len(payloads)), len(payloads))
        attempts += len(counted)
    return Delivery(target, True, attempts, None, len(payloads))


def _failed(why: str, tries: int, index: int, count: int) -> str:
    which = f"message {index + 1} of {count}: " if count > 1 else ""
    sent = f"; {index} earlier message(s) were delivered" if index else ""
    return clip(f"{which}{why} after {tries} attempt(s){sent}", REASON_CHARS, quote=False)


def payloads_for(target: WebhookTarget, doc: alert_formats.AlertDocument) -> list[dict[str, Any]]:
    """The bodies one target gets for this news (PagerDuty: one per condition begun or ended, maybe none)."""
    if target.format == "slack":
        return [alert_formats.slack_message(doc)]
    if target.format == "pagerduty":
        assert target.routing_key is not None  # config.py refuses a pagerduty target without one
        return alert_formats.pagerduty_events(doc, target.routing_key.get_secret_value())
    return [alert_formats.json_message(doc)]


def send_all(
    targets: Iterable[WebhookTarget],
    doc: alert_formats.AlertDocument,
    policy: Policy,
    sleep: Callable[[float], None] = time.sleep,
    post: Poster = post_json,
) -> list[Delivery]:
    """Every target in turn, each on its own: one that fails never keeps the others from being told."""
    deliveries = []
    for target in targets:
        payloads = payloads_for(target, doc)
        if payloads:
            deliveries.append(deliver(target.label, target.url, payloads, policy, sleep=sleep, post=post))
    return deliveries
