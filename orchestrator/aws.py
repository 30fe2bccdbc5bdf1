"""The one place boto3 sessions and clients are made, with the one retry policy.

Every client shares a botocore ``Config`` (standard retry mode, bounded attempts and
timeouts), so no module writes a retry loop of its own, and every client reports its
calls to one ``ApiCallCounter`` so a sweep can say exactly what it cost.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.utils
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
)
from botocore.parsers import ResponseParserError
from tenacity import (
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from orchestrator.config import REGION_NAME
from orchestrator.echo import clip

RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=20,
    max_pool_connections=20,
)

# Mutating calls are not retried by botocore: a read timeout after EC2 accepted a
# reboot must not become a second reboot. Only throttling, which proves the call was
# refused before it ran, is retried (by ``retry_throttled``). botocore's ``max_attempts``
# counts retries (1 would mean two attempts); ``total_max_attempts`` counts attempts.
MUTATING_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": 1},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=10,
)

THROTTLING_CODES = frozenset(
    {"RequestLimitExceeded", "Throttling", "ThrottlingException", "RateExceeded", "TooManyRequestsException"}
)
ACCESS_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "AuthFailure"}
)

AWS_CALL_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError, ResponseParserError)
"""Everything an AWS call raises for reasons outside orch. ``ResponseParserError`` (a reply
botocore cannot parse: a proxy's HTML page, an endpoint for a region that does not exist)
is a plain ``Exception`` in botocore, not a ``BotoCoreError``: catching only the other two
turned it into a traceback."""


def parse_timestamp(value: Any) -> datetime:
    """botocore's timestamp parsing, minus a new dateutil ``tzlocal`` for every epoch value.

    botocore turns each epoch timestamp (CloudWatch answers in epoch seconds) into a
    datetime carrying its own freshly built ``tzlocal()``: about 600 bytes and 15 us a
    timestamp. GetMetricData for 10,000 instances returns 600,000 of them: 200 MB and
    ~9 s of a sweep went to time zone objects. Epoch values and ISO 8601 UTC strings
    (EC2's XML) become datetimes in the one shared ``timezone.utc``: the same instant,
    compared and subtracted the same way. Anything else is left to botocore.
    """
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, timezone.utc)
        if isinstance(value, str) and value.endswith("Z") and "T" in value:
            return datetime.fromisoformat(value)  # ISO 8601 in UTC, as EC2's XML has them
    except (OverflowError, OSError, ValueError):
        pass
    return botocore.utils.parse_timestamp(value)


class AwsError(Exception):
    """An AWS call failed in a way the sweep cannot work around; the message says what to do."""


@dataclass
class ApiCallCounter:
    """Counts API calls (not HTTP attempts) as ``service.Operation``; thread-safe."""

    calls: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def on_call(self, model: Any, **_: Any) -> None:
        with self._lock:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.calls.items()))

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.calls.values())


class Clients:
    """Lazily made, cached boto3 clients sharing one session, config and counter."""

    def __init__(
        self,
        session: boto3.Session | None = None,
        *,
        region: str | None = None,
        profile: str | None = None,
        counter: ApiCallCounter | None = None,
        config: Config = RETRY_CONFIG,
        endpoint_url: str | None = None,
    ) -> None:
        try:
            # AWS_REGION is what Lambda and most AWS tools set; botocore reads only
            # AWS_DEFAULT_REGION, so honour both, the explicit --region first.
            self.session = session or boto3.Session(region_name=region or os.environ.get("AWS_REGION") or None, profile_name=profile)
        except BotoCoreError as exc:
            raise AwsError(f"{clip(str(exc), quote=False)} (check --profile and ~/.aws/config)") from None
        # --endpoint-url, like AWS_ENDPOINT_URL (which botocore reads itself), goes to every client.
        self.endpoint_url = endpoint_url
        # Clients made from this session parse timestamps with ``parse_timestamp``.
        self.session._session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=parse_timestamp)
        self.counter = counter or ApiCallCounter()
        self._config = config
        self._cache: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str | None:
        return self.session.region_name

    def client(self, service: str) -> Any:
        """A client for reads: botocore retries throttling, 5xx and timeouts."""
        return self._make(service, self._config, service)

    def mutating_client(self, service: str) -> Any:
        """A client for mutations: no automatic retry (see MUTATING_CONFIG)."""
        return self._make(service, MUTATING_CONFIG, f"{service}!mutating")

    def _make(self, service: str, config: Config, key: str) -> Any:
        with self._lock:
            if key not in self._cache:
                region = self.session.region_name
                if not region:
                    raise AwsError("no AWS region: pass --region, set AWS_REGION, or set one in the profile")
                if not REGION_NAME.fullmatch(region):
                    raise AwsError(f"region {clip(region)} is not an AWS region name (like us-east-1): check --region, AWS_REGION and the profile")
                endpoint = self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
                if endpoint and not _is_url(endpoint):
                    raise AwsError(f"endpoint {clip(endpoint)} is not a URL: give http(s)://HOST[:PORT] in --endpoint-url or AWS_ENDPOINT_URL")
                try:
                    made = self.session.client(service, config=config, endpoint_url=self.endpoint_url)
                except (BotoCoreError, ValueError) as exc:
                    raise AwsError(f"cannot make the {service} client: {clip(str(exc), quote=False)}") from None
                made.meta.events.register("before-call.*.*", self.counter.on_call)
                made.meta.events.register("after-call.*.*", name_denied_action)
                self._cache[key] = made
            return self._cache[key]

    @property
    def ec2(self) -> Any:
        return self.client("ec2")

    @property
    def cloudwatch(self) -> Any:
        return self.client("cloudwatch")

    @property
    def autoscaling(self) -> Any:
        return self.client("autoscaling")


def _is_url(text: str) -> bool:
    parts = urlsplit(text)
    try:
        parts.port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


IAM_ACTION = "OrchIamAction"
"""Where ``name_denied_action`` leaves the IAM action in a denied call's response."""

# Operations whose IAM action is not named after them (AWS's Service Authorization
# Reference for Amazon S3: HeadObject is authorized as GetObject, HeadBucket and
# ListObjectsV2 as ListBucket). For every other service orch calls (ec2, cloudwatch,
# autoscaling, ssm, sns, sts, dynamodb, cloudformation, iam) the action is
# ``<boto3 service name>:<operation>``.
ACTION_NOT_NAMED_AFTER_OPERATION = {
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}


def iam_action(service: str, operation: str) -> str:
    """The IAM action (``ec2:DescribeInstances``) that authorizes one API operation."""
    return ACTION_NOT_NAMED_AFTER_OPERATION.get((service, operation), f"{service}:{operation}")


def name_denied_action(http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
    """botocore ``after-call`` hook: note on a denied call's response the IAM action it needed.

    AWS's denial messages do not always name the action (EC2's UnauthorizedOperation
    does not), and the operator needs the ``service:Action`` form to fix the policy. The
    hook sees the operation's model, so the error text can name it without this module
    knowing which adapters exist.
    """
    if getattr(http_response, "status_code", 200) < 300 or not isinstance(parsed, dict):
        return
    if str(parsed.get("Error", {}).get("Code", "")) in ACCESS_DENIED_CODES:
        parsed[IAM_ACTION] = iam_action(model.service_model.service_name, model.name)


def describe_aws_error(exc: BaseException, permission: str | None = None) -> str:
    """One line that names the problem and the fix, for any boto3/botocore failure."""
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials found: set AWS_PROFILE / --profile, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region, set AWS_REGION, or set one in the profile"
    if isinstance(exc, ClientError):
        code = error_code(exc)
        op = exc.operation_name
        message = exc.response.get("Error", {}).get("Message", "")
        if code in ACCESS_DENIED_CODES:
            needed = permission or exc.response.get(IAM_ACTION) or op
            return f"access denied calling {op}: the caller lacks the IAM permission {needed} ({message})"
        if code in THROTTLING_CODES:
            return f"{op} was throttled ({code}): the account's API rate budget is shared by every tool in it; sweep less often or try again later"
        return f"{op} failed: {code}: {clip(message, quote=False)}"
    if isinstance(exc, ResponseParserError):
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "no detail"
        return (
            f"AWS answered something botocore cannot parse ({first[:200]}): check the region (--region, AWS_REGION) "
            "and AWS_ENDPOINT_URL or --endpoint-url; a proxy may be answering in AWS's place"
        )
    if isinstance(exc, EndpointConnectionError):
        return f"cannot reach the AWS endpoint {clip(exc.kwargs.get('endpoint_url', ''), quote=False)}: check the network, --endpoint-url and AWS_ENDPOINT_URL"
    if isinstance(exc, BotoCoreError):
        return f"AWS call failed: {clip(str(exc), quote=False)}"
    return f"AWS call failed: {exc!r}"


def is_throttle(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_CODES


retry_throttled = retry(
    retry=retry_if_exception(is_throttle),
    stop=stop_after_attempt(5),
    wait=wait_exponential_jitter(multiplier=0.2, max=5),
    reraise=True,
)
"""Decorator for mutating calls: retry only what AWS refused for rate, never a timeout."""
