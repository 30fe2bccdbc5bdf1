"""Injected AWS faults: answer chosen HTTP attempts with chosen errors, so botocore's own
retry machinery (and orch's tenacity policy for mutations) really runs.

    plan = FaultPlan().on("DescribeInstances", calls={2}, fault=throttle("RequestLimitExceeded"))
    plan.attach_clients(clients)          # every current and future client of an orch Clients
    ...
    assert plan.attempts("DescribeInstances") == 4

How it works, and what was verified against botocore 1.44 / moto 5.2:

* The hook is a ``before-send`` handler registered with ``register_first``. botocore's
  endpoint takes the first non-None answer of that event as the HTTP response and
  then parses it, runs ``needs-retry`` (standard mode: throttling codes, 5xx,
  transport errors), sleeps, and sends again: each retry is a new ``before-send``,
  so ``calls`` counts HTTP attempts, not API calls (ApiCallCounter counts those).
* Raising ``ReadTimeoutError`` / ``ConnectionClosedError`` from the handler is caught
  by the endpoint exactly like a transport error from urllib3, and standard mode
  retries it (``TransientRetryableChecker``: it is an ``HTTPClientError``).
* ``register_first`` alone does NOT keep moto out: the endpoint uses ``emit`` (every
  handler runs), not ``emit_until_response``, so moto's own ``before-send`` handler
  would still execute the operation (a "throttled" RebootInstances would reboot).
  ``attach`` therefore swaps moto's handler on that client for a gate that skips
  requests a fault already answered. ``reaches_server=True`` lets a fault pass the
  request to moto first and then lose the reply: the call ran, the caller cannot know.
* Error bodies are rendered in the protocol botocore actually uses for the client,
  ``service_model.resolved_protocol``. That is not always ``.protocol``: CloudWatch's
  model lists ``smithy-rpc-v2-cbor`` first, but this botocore prefers ``json`` (awsJson
  1.0, query-compatible) and CloudWatch speaks JSON on the wire. CBOR is rendered
  for services that resolve to it (``cloudwatchomni``, or a test forcing it).

Fast retries: ``no_backoff(monkeypatch)`` makes botocore's standard-mode backoff and
tenacity's sleep return at once while recording the delays they asked for.
"""

from __future__ import annotations

import gzip
import itertools
import json
import struct
import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Iterable
from urllib.parse import parse_qs

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.exceptions import BotoCoreError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

THROTTLING_CODES = ("RequestLimitExceeded", "Throttling", "ThrottlingException", "RateExceeded")
_FLAG = "_fault_plan_answered"
_request_ids = itertools.count(1)


# -- CBOR (RFC 8949), just enough for error and small success bodies ------------------


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError(f"integer too large for CBOR: {value}")


def encode_cbor(value: Any) -> bytes:
    """Definite-length CBOR for None, bool, int, float, bytes, str, list and dict."""
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        return _head(0, value) if value >= 0 else _head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8")
        return _head(3, len(raw)) + raw
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(encode_cbor(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(encode_cbor(k) + encode_cbor(v) for k, v in value.items())
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


# -- what a fault sees -----------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One HTTP attempt of one operation, as the fault plan saw it."""

    service: str  # hyphenized service id, as in event names: ec2, cloudwatch, auto-scaling, sns, dynamodb
    operation: str
    number: int  # 1-based, per (service, operation), over every client the plan is attached to
    protocol: str  # the protocol botocore resolved for this client
    model: Any = field(repr=False)  # botocore ServiceModel
    request: AWSPreparedRequest = field(repr=False)

    @property
    def body(self) -> bytes:
        """The request body as sent, un-gzipped (botocore compresses PutMetricData)."""
        body = self.request.body
        if isinstance(body, str):
            raw = body.encode()
        elif isinstance(body, (bytes, bytearray)):
            raw = bytes(body)
        else:
            return b""  # none, or a stream: no test here looks into one
        encoding = self.request.headers.get("Content-Encoding") or b""
        if (encoding.decode() if isinstance(encoding, bytes) else encoding) == "gzip":
            raw = gzip.decompress(raw)
        return raw

    def params(self) -> dict[str, Any]:
        """Request parameters: query/ec2 form fields (lists), or the JSON document."""
        if self.protocol in ("query", "ec2"):
            return parse_qs(self.body.decode(), keep_blank_values=True)
        if self.protocol == "json" and self.body:
            loaded = json.loads(self.body)
            return loaded if isinstance(loaded, dict) else {}
        return {}

    def instance_ids(self) -> list[str]:
        """EC2 ``InstanceId.N`` parameters, in order."""
        return _instance_ids(self.params())


def _instance_ids(params: dict[str, Any]) -> list[str]:
    found = {k: v[0] for k, v in params.items() if k.startswith("InstanceId.")}
    return [found[k] for k in sorted(found, key=lambda k: int(k.split(".")[1]))]


@dataclass(frozen=True)
class Record:
    service: str
    operation: str
    number: int
    fault: str | None  # the fault's name, or None when the call went through
    reached_server: bool
    params: dict[str, Any] = field(repr=False, compare=False)

    def instance_ids(self) -> list[str]:
        return _instance_ids(self.params)


# -- faults ---------------------------------------------------------------------------


class _Raw:
    """The raw body object AWSResponse reads: ``.stream()`` and ``.read()``."""

    def __init__(self, body: bytes) -> None:
        self._body = body
        self._done = False

    def read(self, amt: int | None = None) -> bytes:
        if self._done:
            return b""
        self._done = True
        return self._body

    def stream(self, **_: Any) -> Iterable[bytes]:
        chunk = self.read()
        if chunk:
            yield chunk


def _response(call: Call, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    headers = {"x-amzn-requestid": f"fault-{next(_request_ids)}", "content-length": str(len(body)), **headers}
    return AWSResponse(call.request.url, status, headers, _Raw(body))


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class ErrorReply:
    """An error response, rendered in the client's wire protocol so botocore parses the code."""

    code: str
    message: str = ""
    status: int = 400
    body: bool = True  # False: an empty body (a load balancer's bare 5xx)

    @property
    def name(self) -> str:
        return f"{self.status} {self.code}" if self.body else f"{self.status} (empty body)"

    def answer(self, call: Call) -> AWSResponse:
        if not self.body:
            return _response(call, self.status, {}, b"")
        kind = "Sender" if self.status < 500 else "Receiver"
        code, message = self.code, _xml_escape(self.message)
        request_id = f"fault-{call.service}-{call.operation}-{call.number}"
        headers: dict[str, str] = {}
        if call.model.metadata.get("awsQueryCompatible") is not None:
            headers["x-amzn-query-error"] = f"{self.code};{kind}"
        namespaced = f"com.amazonaws.{call.model.service_name}#{self.code}"
        if call.protocol == "ec2":
            body = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>{code}</Code>'
                f"<Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ).encode()
            headers["content-type"] = "text/xml;charset=UTF-8"
        elif call.protocol == "query":
            body = (
                f'<ErrorResponse xmlns="https://{call.model.endpoint_prefix}.amazonaws.com/doc/{call.model.api_version}/">'
                f"<Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
            headers["content-type"] = "text/xml"
        elif call.protocol == "rest-xml":
            body = (
                f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
            ).encode()
            headers["content-type"] = "application/xml"
        elif call.protocol == "json":
            body = json.dumps({"__type": namespaced, "message": self.message}).encode()
            headers["content-type"] = f"application/x-amz-json-{call.model.metadata.get('jsonVersion', '1.0')}"
        elif call.protocol == "rest-json":
            body = json.dumps({"message": self.message}).encode()
            headers["x-amzn-errortype"] = f"{self.code}:http://internal.amazon.com/coral/{call.model.service_name}/"
            headers["content-type"] = "application/json"
        elif call.protocol == "smithy-rpc-v2-cbor":
            body = encode_cbor({"__type": namespaced, "message": self.message})
            headers["smithy-protocol"] = "rpc-v2-cbor"
            headers["content-type"] = "application/cbor"
        else:
            raise NotImplementedError(f"no error rendering for protocol {call.protocol}")
        return _response(call, self.status, headers, body)


@dataclass(frozen=True)
class TransportFault:
    """No reply at all: botocore sees a transport error, as from urllib3."""

    exception: type[BotoCoreError]

    @property
    def name(self) -> str:
        return self.exception.__name__

    def answer(self, call: Call) -> AWSResponse:
        raise self.exception(endpoint_url=call.request.url, error="injected by FaultPlan")


@dataclass(frozen=True)
class Success:
    """A 200 with the given document (json or CBOR protocols): fakes a page or a reply."""

    document: dict[str, Any]

    @property
    def name(self) -> str:
        return "200 (scripted)"

    def answer(self, call: Call) -> AWSResponse:
        if call.protocol == "smithy-rpc-v2-cbor":
            headers = {"smithy-protocol": "rpc-v2-cbor", "content-type": "application/cbor"}
            return _response(call, 200, headers, encode_cbor(self.document))
        if call.protocol == "json":
            return _response(call, 200, {"content-type": "application/x-amz-json-1.0"}, json.dumps(self.document).encode())
        raise NotImplementedError(f"no success rendering for protocol {call.protocol}")


@dataclass(frozen=True)
class RawReply:
    """Any status and body, as is: a proxy's HTML page, or bytes botocore cannot parse."""

    status: int
    body: bytes
    content_type: str = "text/html"

    @property
    def name(self) -> str:
        return f"{self.status} raw {self.content_type}"

    def answer(self, call: Call) -> AWSResponse:
        return _response(call, self.status, {"content-type": self.content_type}, self.body)


Fault = ErrorReply | TransportFault | Success | RawReply


def throttle(code: str = "RequestLimitExceeded", status: int = 400, message: str = "Rate exceeded.") -> ErrorReply:
    """A throttling error. Status 400 makes botocore decide by the code alone (429 and
    503 would be retried for their status whatever the code)."""
    return ErrorReply(code, message, status)


def server_error(status: int = 500, body: bool = True) -> ErrorReply:
    code = {500: "InternalError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}.get(status, "InternalError")
    return ErrorReply(code, "We encountered an internal error. Please try again.", status, body)


def access_denied(code: str = "AccessDenied") -> ErrorReply:
    """Deliberately generic message (EC2's UnauthorizedOperation names no action): orch
    must name the permission itself."""
    return ErrorReply(code, "You are not authorized to perform this operation.", 403)


def error(code: str, message: str = "", status: int = 400) -> ErrorReply:
    return ErrorReply(code, message or f"injected {code}", status)


def read_timeout() -> TransportFault:
    return TransportFault(ReadTimeoutError)


def connection_closed() -> TransportFault:
    return TransportFault(ConnectionClosedError)


def endpoint_unreachable() -> TransportFault:
    """No connection at all (DNS, routing, a dead VPC endpoint): botocore's EndpointConnectionError."""
    return TransportFault(EndpointConnectionError)


def succeed(document: dict[str, Any]) -> Success:
    return Success(document)


def raw(body: bytes, status: int = 200, content_type: str = "text/html") -> RawReply:
    return RawReply(status, body, content_type)


# -- the plan -------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    operation: str
    fault: Fault
    calls: frozenset[int] | None  # None: every attempt
    service: str | None
    when: Callable[[Call], bool] | None
    reaches_server: bool

    def matches(self, call: Call) -> bool:
        return (
            call.operation == self.operation
            and (self.service is None or call.service == self.service)
            and (self.calls is None or call.number in self.calls)
            and (self.when is None or self.when(call))
        )


def _moto_stubber() -> Any:
    try:
        from moto.core.models import botocore_stubber
    except ImportError:  # pragma: no cover - moto is a test dependency
        return None
    return botocore_stubber


def _registered(events: Any, event: str, handler: Any) -> bool:
    emitter = getattr(events, "_emitter", events)
    return handler in list(emitter._handlers.prefix_search(event))


class FaultPlan:
    """Which attempts of which operations fail, and how; a log of every attempt seen."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.log: list[Record] = []
        self._numbers: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._attached: list[Any] = []  # keeps clients alive and makes attach idempotent
        self._uid = f"fault-plan-{id(self)}"

    # building

    def on(
        self,
        operation: str,
        *,
        fault: Fault,
        calls: Collection[int] | None = None,
        service: str | None = None,
        when: Callable[[Call], bool] | None = None,
        reaches_server: bool = False,
    ) -> "FaultPlan":
        """Answer attempts of ``operation`` with ``fault``.

        ``calls``: 1-based attempt numbers of that operation (None: every attempt);
        ``service``: hyphenized service id, when an operation name exists in several;
        ``when``: a predicate on the ``Call`` (e.g. which instance ids it names);
        ``reaches_server``: moto runs the request first, then the reply is replaced.
        The first matching rule wins.
        """
        self.rules.append(
            Rule(operation, fault, None if calls is None else frozenset(calls), service, when, reaches_server)
        )
        return self

    # attaching

    def attach(self, client: Any) -> Any:
        """Hook one botocore client; idempotent. Returns the client."""
        with self._lock:
            if any(c is client for c in self._attached):
                return client
            self._attached.append(client)
        events = client.meta.events
        model = client.meta.service_model
        stubber = _moto_stubber()
        server = None
        if stubber is not None and _registered(events, "before-send", stubber):
            events.unregister("before-send", stubber)
            server = stubber

            def gate(event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:
                if getattr(request, _FLAG, False):
                    return None  # a fault answered: the request never reached AWS
                return stubber(event_name=event_name, request=request, **kwargs)

            events.register("before-send", gate, unique_id=f"{self._uid}-gate")

        def before_send(event_name: str, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
            return self._before_send(event_name, request, model, server)

        events.register_first("before-send", before_send, unique_id=self._uid)
        return client

    def attach_clients(self, clients: Any) -> Any:
        """Hook every client an ``orchestrator.aws.Clients`` has made or will make."""
        for made in list(clients._cache.values()):
            self.attach(made)
        original = clients._make

        def _make(service: str, config: Any, key: str) -> Any:
            return self.attach(original(service, config, key))

        clients._make = _make
        return clients

    def install(self, monkeypatch: Any) -> "FaultPlan":
        """Hook every ``Clients`` instance made while the test runs (e.g. by the CLI)."""
        from orchestrator.aws import Clients

        original = Clients._make

        def _make(inner: Any, service: str, config: Any, key: str) -> Any:
            return self.attach(original(inner, service, config, key))

        monkeypatch.setattr(Clients, "_make", _make)
        return self

    # the hook

    def _before_send(self, event_name: str, request: AWSPreparedRequest, model: Any, server: Any) -> AWSResponse | None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self._numbers[(service, operation)] += 1
            number = self._numbers[(service, operation)]
        call = Call(service, operation, number, model.resolved_protocol, model, request)
        rule = next((r for r in self.rules if r.matches(call)), None)
        reached = rule is None or rule.reaches_server
        with self._lock:
            self.log.append(Record(service, operation, number, rule.fault.name if rule else None, reached, call.params()))
        if rule is None:
            return None
        if rule.reaches_server:
            if server is None:
                raise AssertionError("reaches_server needs moto's handler on the client (run under mock_aws)")
            server(event_name=event_name, request=request)
        setattr(request, _FLAG, True)
        return rule.fault.answer(call)

    # reading the log

    def attempts(self, operation: str, service: str | None = None) -> int:
        """HTTP attempts of ``operation`` seen so far (faulted or not)."""
        with self._lock:
            return sum(n for (s, o), n in self._numbers.items() if o == operation and (service is None or s == service))

    def injected(self, operation: str | None = None) -> list[Record]:
        with self._lock:
            return [r for r in self.log if r.fault is not None and (operation is None or r.operation == operation)]

    def reached_server(self, operation: str) -> list[Record]:
        """Attempts of ``operation`` the server (moto) actually executed."""
        with self._lock:
            return [r for r in self.log if r.operation == operation and r.reached_server]

    def operations(self) -> list[str]:
        with self._lock:
            return [r.operation for r in self.log]


# -- fast retries ----------------------------------------------------------------------


@dataclass
class Backoffs:
    """Delays the retry policies asked for; none of them was slept."""

    botocore: list[float] = field(default_factory=list)
    tenacity: list[float] = field(default_factory=list)


def no_backoff(monkeypatch: Any) -> Backoffs:
    """Keep retries instant but real: the same decisions, no sleeping.

    botocore standard mode sleeps ``ExponentialBackoff.delay_amount(context)`` between
    attempts (endpoint.py); it is wrapped to record the delay and return 0. tenacity's
    default sleep is ``tenacity.nap.sleep``, which calls ``time.sleep`` through the
    ``time`` name of ``tenacity.nap``; that name is pointed at a recorder.
    """
    import types

    import tenacity.nap
    from botocore.retries import standard

    recorded = Backoffs()
    original = standard.ExponentialBackoff.delay_amount

    def delay_amount(self: Any, context: Any) -> float:
        recorded.botocore.append(original(self, context))
        return 0.0

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", delay_amount)
    monkeypatch.setattr(tenacity.nap, "time", types.SimpleNamespace(sleep=recorded.tenacity.append))
    return recorded
