"""The fleet's lease where every healer of it can see it: SSM Parameter Store.

The state store's lease only excludes sweeps that share that store: two laptops with
two SQLite files, or a cron job and a person, or a person and the deployed Lambda's
DynamoDB table, would act on the same instances at once. Every healer of a fleet can
reach the fleet's account and region, so the lease is also taken there, besides the
store's (``LeaseKeeper``), and released after.

How it stays exclusive, with only what Parameter Store documents:

- One parameter per *generation* of the lease: ``/orch/lease/<region>/<vpc>/<n>``. A
  generation is created with ``PutParameter(Overwrite=false)``, which fails with
  ``ParameterAlreadyExists`` when the name exists: of two healers creating generation
  ``n``, exactly one succeeds. That is the only compare-and-set Parameter Store has.
- To take the lease, read the generations (``GetParametersByPath``, every page: AWS
  returns results "on a best-effort basis" with a NextToken), and if the newest is
  free (released or expired) create the next one. Nobody ever overwrites a generation
  they did not create: an expired holder is overtaken by a *new* name, never by
  rewriting its value, so there is no read-compare-overwrite window.
- The holder renews by overwriting its own generation (nobody else writes it), checks
  before each mutation that its generation is still the newest, live and its own, and
  releases by deleting its own generation only. Older generations are deleted by the
  taker, best effort; a leftover one is expired or released and only numbers the next.

The windows that remain, honestly: expiry is judged by each healer's own clock (a
healer whose clock runs ahead may see a live lease as expired: keep clocks in sync;
the TTL is minutes). A listing that missed a generation just created would aim at a
name that exists and fail safely, but one that still showed a generation already
deleted could let a taker create a name below the live one: the holder's checks then
still see itself newest, and the taker, which checks the same way before acting,
does not. No healer ever acts without its check passing.

Account and region are not in the name: the parameter already lives in exactly one
account and region, and a name holding an account that one caller knew and another
did not ('-') would let the two miss each other.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import Any

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error, error_code
from orchestrator.state.codec import from_iso, to_iso
from orchestrator.state.store import Lease, LeaseHeld, LeaseLost, StateError, lease_is_live, lease_problem, require_lease_args

log = logging.getLogger(__name__)

PREFIX = "/orch/lease"
PERMISSIONS = frozenset({"ssm:PutParameter", "ssm:GetParametersByPath", "ssm:DeleteParameter"})
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def parameter_path(scope: str) -> str:
    """``/orch/lease/<region>/<vpc or all-vpcs>`` for a lease scope ``account/region/vpc``."""
    parts = scope.split("/")
    region, vpc = (parts[1], parts[2]) if len(parts) == 3 else ("-", scope)
    vpc = "all-vpcs" if vpc in ("*", "") else vpc
    return f"{PREFIX}/{_UNSAFE.sub('_', region)[:64] or '-'}/{_UNSAFE.sub('_', vpc)[:128]}"


class SsmLeases:
    """The lease part of the state store port, over Parameter Store (see the module docstring)."""

    def __init__(self, ssm: Any) -> None:
        self._ssm = ssm

    # -- the port --------------------------------------------------------------------

    def acquire_lease(self, scope: str, owner: str, ttl: timedelta, now: datetime, take_over: Lease | None = None) -> Lease:
        require_lease_args(ttl, now)
        path = parameter_path(scope)
        generations = self._generations(scope, path)
        top = max(generations, default=0)
        current = generations.get(top)
        if lease_is_live(current, now):
            assert current is not None
            dead = take_over is not None and (take_over.owner, take_over.fence) == (current.owner, current.fence)
            if current.owner != owner and not dead:
                raise LeaseHeld(scope, current.owner, current.expires_at, current.fence)
        lease = Lease(scope, owner, now + ttl, top + 1)
        try:
            self._call("PutParameter", Name=f"{path}/{top + 1}", Value=_value(lease), Type="String", Overwrite=False)
        except _AlreadyExists:
            # Another healer created this generation first; or our own retried call did.
            mine = self._generations(scope, path).get(top + 1)
            if mine is None or mine.owner != owner:
                holder = mine or Lease(scope, "another healer", now + ttl, top + 1)
                raise LeaseHeld(scope, holder.owner, holder.expires_at, holder.fence) from None
            lease = mine
        for old in sorted(generations):
            self._delete(f"{path}/{old}")  # expired or released: they only number the next one
        return lease

    def renew_lease(self, lease: Lease, ttl: timedelta, now: datetime) -> Lease:
        require_lease_args(ttl, now)
        self.check_lease(lease, now)
        renewed = Lease(lease.scope, lease.owner, now + ttl, lease.fence)
        self._call("PutParameter", Name=f"{parameter_path(lease.scope)}/{lease.fence}", Value=_value(renewed), Type="String", Overwrite=True)
        return renewed

    def check_lease(self, lease: Lease, now: datetime) -> None:
        problem = lease_problem(lease, self.get_lease(lease.scope), now)
        if problem is not None:
            raise LeaseLost(f"{problem} (SSM parameter {parameter_path(lease.scope)})")

    def release_lease(self, lease: Lease) -> None:
        self._delete(f"{parameter_path(lease.scope)}/{lease.fence}")

    def get_lease(self, scope: str) -> Lease | None:
        generations = self._generations(scope, parameter_path(scope))
        return generations[max(generations)] if generations else None

    # -- Parameter Store ---------------------------------------------------------------

    def _generations(self, scope: str, path: str) -> dict[int, Lease]:
        found: dict[int, Lease] = {}
        try:
            for page in self._ssm.get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=False):
                for parameter in page.get("Parameters", []):
                    last = str(parameter.get("Name", "")).rpartition("/")[2]
                    if last.isdigit():
                        found[int(last)] = _lease(scope, int(last), str(parameter.get("Value", "")))
        except AWS_CALL_ERRORS as exc:
            raise StateError(_failed(exc, "ssm:GetParametersByPath", path)) from None
        return found

    def _call(self, operation: str, **kwargs: Any) -> Any:
        try:
            return self._ssm.put_parameter(**kwargs)
        except AWS_CALL_ERRORS as exc:
            if error_code(exc) == "ParameterAlreadyExists":
                raise _AlreadyExists() from None
            raise StateError(_failed(exc, f"ssm:{operation}", kwargs["Name"])) from None

    def _delete(self, name: str) -> None:
        try:
            self._ssm.delete_parameter(Name=name)
        except AWS_CALL_ERRORS as exc:
            if error_code(exc) != "ParameterNotFound":
                log.warning("could not delete the lease parameter %s (it expires by itself): %s", name, describe_aws_error(exc))


class _AlreadyExists(Exception):
    """PutParameter(Overwrite=false) found the name taken."""


def _value(lease: Lease) -> str:
    return json.dumps({"owner": lease.owner, "expires_at": to_iso(lease.expires_at), "fence": lease.fence}, separators=(",", ":"))


def _lease(scope: str, fence: int, text: str) -> Lease:
    """A generation's value; one that cannot be read is a lease nobody holds (it expired at the epoch)."""
    try:
        data = json.loads(text)
        return Lease(scope, str(data["owner"]), from_iso(str(data["expires_at"])), fence)
    except (ValueError, KeyError, TypeError):
        return Lease(scope, "", from_iso("1970-01-01T00:00:00+00:00"), fence)


def _failed(exc: BaseException, permission: str, name: str) -> str:
    return f"the fleet's shared lease ({name}) could not be read or written: {describe_aws_error(exc, permission)}"
