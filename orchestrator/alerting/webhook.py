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
the body somewhere nobody configured). Only http(s) URLs are accepted (config/sections.py).

stdlib urllib, not requests: the Lambda zip stays small and this is one POST.
"""

from __future__ import annotations

import functools
import http.client
import json
import socket
import threading
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
RESPONSE_BYTES = 65_536  # of a 2xx body: read so the server sees the exchange end, then dropped


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
    """Why a request failed, in words that never quote the URL (its path is the secret)."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {clip(exc.reason, 80, quote=False)}"
    if isinstance(exc, urllib.error.URLError):
        inner = exc.reason
        return f"cannot connect: {_reason(inner) if isinstance(inner, BaseException) else clip(inner, 80, quote=False)}"
    if isinstance(exc, TimeoutError):
        return "no answer in time (timeout)"
    if isinstance(exc, OSError):
        return f"connection failed: {type(exc).__name__}" + (f" ({exc.strerror})" if exc.strerror else "")
    if isinstance(exc, (http.client.InvalidURL, UnicodeError)):
        return "the URL cannot be sent as it is (a space, control or non-ASCII character): fix it in the configuration"
    if isinstance(exc, http.client.HTTPException):
        return f"the answer is not HTTP ({type(exc).__name__}): is something else listening on that port?"
    return f"the request failed ({type(exc).__name__})"


class _Sockets:
    """The sockets one request opened, so the deadline can shut them from outside its thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._closed = False

    def add(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)
            closed = self._closed
        if closed:
            _shut(sock)

    def shut(self) -> None:
        """Wake the request's thread: a read on a shut socket returns at once."""
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed: nothing left to wake


def _tracked(connection: http.client.HTTPConnection, sockets: _Sockets) -> None:
    """Register the raw socket the moment it exists, before any TLS handshake."""
    create = connection._create_connection

    def create_and_track(*args: Any, **kwargs: Any) -> socket.socket:
        sock = create(*args, **kwargs)
        sockets.add(sock)
        return sock

    connection._create_connection = create_and_track  # type: ignore[method-assign]


class _TrackedHTTP(http.client.HTTPConnection):
    def __init__(self, *args: Any, sockets: _Sockets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tracked(self, sockets)


class _TrackedHTTPS(http.client.HTTPSConnection):
    def __init__(self, *args: Any, sockets: _Sockets, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _tracked(self, sockets)


class _HttpHandler(urllib.request.HTTPHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self._sockets = sockets

    def http_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_TrackedHTTP, sockets=self._sockets), req)


class _HttpsHandler(urllib.request.HTTPSHandler):
    def __init__(self, sockets: _Sockets) -> None:
        super().__init__()
        self._sockets = sockets

    def https_open(self, req: urllib.request.Request) -> Any:
        return self.do_open(functools.partial(_TrackedHTTPS, sockets=self._sockets), req)


def _post_once(opener: urllib.request.OpenerDirector, request: urllib.request.Request, timeout: float) -> int:
    """The request itself, in the worker thread: the 2xx status, or RetryableFailure / Refused."""
    try:
        with opener.open(request, timeout=timeout) as response:
            response.read(RESPONSE_BYTES)
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
    except Exception as exc:  # noqa: BLE001 - anything a peer that does not speak HTTP makes http.client raise
        raise Refused(_reason(exc)) from None


def post_json(url: str, payload: Mapping[str, Any], timeout: float) -> int:
    """One POST, bounded as a whole by ``timeout``; returns the 2xx status or raises RetryableFailure / Refused.

    A socket timeout bounds each read, not the request: a server dripping one byte a
    second would hold it for ever. The request runs in a daemon thread; at the deadline
    its sockets are shut (which wakes the thread's read at once) and the request counts
    as timed out. Nothing else is raised, whatever the peer sends.
    """
    data = json.dumps(payload, separators=(",", ":")).encode()
    try:
        request = urllib.request.Request(
            url, data=data, method="POST", headers={"Content-Type": "application/json", "User-Agent": USER_AGENT}
        )
    except ValueError as exc:  # config/sections.py refuses such URLs; never quote one here
        raise Refused(_reason(exc)) from None
    sockets = _Sockets()
    opener = urllib.request.build_opener(_NoRedirects(), _HttpHandler(sockets), _HttpsHandler(sockets))
    outcome: list[int | BaseException] = []

    def work() -> None:
        try:
            outcome.append(_post_once(opener, request, timeout))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread as it is
            outcome.append(exc)

    worker = threading.Thread(target=work, name="orch-webhook", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive() or not outcome:
        sockets.shut()
        raise RetryableFailure(f"no complete answer within {timeout:g} s (timeout)")
    result = outcome[0]
    if isinstance(result, (RetryableFailure, Refused)):
        raise result
    if isinstance(result, BaseException):
        raise Refused(_reason(result))
    return result


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

        def out_of_time(retry_state: RetryCallState) -> bool:
            """The message's total, on the injected clock: no attempt starts past it."""
            return monotonic() - started >= policy.total_seconds

        def one(payload: dict[str, Any] = payload, left: float = left) -> int:
            counted.append(1)
            remaining = left - (monotonic() - call_started)
            try:
                return post(url, payload, max(0.1, min(policy.timeout_seconds, remaining)))
            except (RetryableFailure, Refused):
                raise
            except Exception as exc:  # noqa: BLE001 - delivery never raises: a sweep that acted must reach its record
                raise Refused(_reason(exc)) from None

        retrying = Retrying(
            retry=retry_if_exception_type(RetryableFailure),
            stop=stop_after_attempt(policy.attempts) | stop_after_delay(max(0.0, left)) | too_long | out_of_time,
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
        assert target.routing_key is not None  # config/sections.py refuses a pagerduty target without one
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
