"""One view over many regions and accounts: fan a read out, one row per (account, region, VPC).

People run ``orch status --regions a,b --accounts 1,2 --role-arn TEMPLATE`` by hand.
Each (account, region) is a *place*; its clients come from an injected factory (the
default assumes ``TEMPLATE.format(account=...)`` through STS, once per account, or uses
the caller's own credentials when no account is named). Each place's work runs on a
bounded thread pool; the rows come back in the order the places were asked for, not
the order they finished. A place that fails (access denied, an endpoint down, a table
missing) is a row saying so, never a traceback and never a silently missing region:
the caller exits non-zero when any place failed.

Which state table does a region use? The healers registered in that region
(orchestrator/estate/registry.py, ``/orch/healers/<stack>`` in SSM) name their store and VPC,
one row each; a region with none falls back to the configured ``--state`` (if it is a
DynamoDB table: a local SQLite file is no region's).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Generic, Mapping, Sequence, TypeVar

import boto3

from orchestrator.aws import AWS_CALL_ERRORS, AwsError, Clients, describe_aws_error
from orchestrator.estate import registry
from orchestrator.state.store import StateError

T = TypeVar("T")
OWN = "-"  # the caller's own account, whatever it is
DEFAULT_PARALLEL = 4
PLACE_ERRORS = (*AWS_CALL_ERRORS, AwsError, StateError, registry.HealerConflict)


class EstateUsageError(Exception):
    """The request names no place or names one wrongly; nothing was called."""


def split_list(value: str | None) -> tuple[str, ...]:
    """'a, b,,c' -> ('a', 'b', 'c'), keeping the order given and dropping repeats."""
    seen: dict[str, None] = {}
    for item in (value or "").split(","):
        if item.strip():
            seen.setdefault(item.strip(), None)
    return tuple(seen)


@dataclass(frozen=True, order=True)
class Place:
    account: str  # OWN for the caller's own credentials
    region: str


def places(regions: Sequence[str], accounts: Sequence[str] = ()) -> list[Place]:
    """Every (account, region) asked for: accounts in the order given, regions within each."""
    if not regions:
        raise EstateUsageError("--regions needs at least one region, e.g. --regions us-east-1,eu-west-1")
    for account in accounts:
        if not (account.isdigit() and len(account) == 12):
            raise EstateUsageError(f"--accounts: {account!r} is not a 12-digit AWS account id")
    return [Place(account, region) for account in (accounts or (OWN,)) for region in regions]


ClientsFactory = Callable[[Place], Clients]


def regional_sts(clients: Clients) -> Any:
    """STS at the region's own endpoint, whatever botocore's default.

    Before botocore 1.40 (boto3 1.40) the default was ``legacy``: the global endpoint for
    the original regions. Its session tokens are valid only in regions enabled by default,
    so credentials assumed there (once per account, reused in every region) were refused
    in opt-in regions (af-south-1, ap-east-1, me-south-1...). Tokens from a regional
    endpoint are valid in every region.
    """
    clients.session._session.set_config_variable("sts_regional_endpoints", "regional")
    return clients.client("sts")


class AssumeRoleFactory:
    """Clients per place: the profile's own credentials for OWN, an assumed role (once per account) otherwise."""

    def __init__(self, profile: str | None, role_arn_template: str | None, endpoint_url: str | None = None,
                 session_name: str = "orch-estate") -> None:
        self.profile = profile
        self.template = role_arn_template
        self.endpoint_url = endpoint_url
        self.session_name = session_name
        self._credentials: dict[str, Mapping[str, Any]] = {}
        self._lock = threading.Lock()

    def role_arn(self, account: str) -> str:
        if not self.template or "{account}" not in self.template:
            raise EstateUsageError("--accounts needs --role-arn with {account} in it, e.g. --role-arn 'arn:aws:iam::{account}:role/orch-operator'")
        return self.template.replace("{account}", account)

    def _assumed(self, account: str, region: str) -> Mapping[str, Any]:
        with self._lock:
            if account not in self._credentials:
                sts = regional_sts(Clients(region=region, profile=self.profile, endpoint_url=self.endpoint_url))
                reply = sts.assume_role(RoleArn=self.role_arn(account), RoleSessionName=self.session_name)
                self._credentials[account] = reply["Credentials"]
            return self._credentials[account]

    def __call__(self, place: Place) -> Clients:
        if place.account == OWN:
            return Clients(region=place.region, profile=self.profile, endpoint_url=self.endpoint_url)
        creds = self._assumed(place.account, place.region)
        session = boto3.Session(
            aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"], aws_session_token=creds["SessionToken"],
            region_name=place.region,
        )
        return Clients(session, endpoint_url=self.endpoint_url)


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """One place's answer: its rows, or the one line saying why there are none."""

    place: Place
    account_id: str  # the real account id where known (OWN resolved through sts:GetCallerIdentity)
    value: T | None = None
    error: str | None = None


def fan_out(
    where: Sequence[Place], work: Callable[[Place, Clients], T], factory: ClientsFactory, parallel: int = DEFAULT_PARALLEL,
) -> list[Outcome[T]]:
    """Run ``work`` at every place, at most ``parallel`` at a time; outcomes in the order of ``where``.

    ``work`` is given the place with its real account id (OWN resolved through
    sts:GetCallerIdentity), so every row and lease scope names the account.
    """

    def one(place: Place) -> Outcome[T]:
        account = place.account
        try:
            clients = factory(place)
            if account == OWN:
                account = str(clients.client("sts").get_caller_identity()["Account"])
            return Outcome(place, account, value=work(Place(account, place.region), clients))
        except EstateUsageError:
            raise
        except PLACE_ERRORS as exc:
            message = describe_aws_error(exc) if isinstance(exc, AWS_CALL_ERRORS) else str(exc)
            return Outcome(place, account, error=message)

    with ThreadPoolExecutor(max_workers=max(1, parallel), thread_name_prefix="orch-estate") as pool:
        return list(pool.map(one, where))


@dataclass(frozen=True)
class Store:
    """A state table to read in one region: a registered healer's, or the configured one."""

    vpc_id: str | None
    state: str
    stack: str  # "" for the configured store


def stores_in(clients: Clients, selector: Mapping[str, str], vpc_id: str | None, configured: str | None) -> list[Store]:
    """The healers registered in this region for this selector (and VPC), else the configured DynamoDB table."""
    healers = [
        h for h in registry.list_healers(clients.client("ssm"))
        if registry.overlaps(h.selector, selector) and (vpc_id is None or h.vpc_id in (None, vpc_id))
    ]
    if healers:
        return [Store(h.vpc_id, h.state, h.stack) for h in healers]
    if configured and configured.startswith("dynamodb://"):
        return [Store(vpc_id, configured, "")]
    return []
