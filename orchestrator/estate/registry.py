"""Where the deployed healers are, so that a manual `orch` and a stack never heal one fleet twice.

A lease only excludes sweeps that share a store. A manual `orch heal` uses a local
SQLite file by default while the deployed Lambda uses its DynamoDB table: two stores,
two leases, the same instances rebooted twice (issue: "Two stores, two healers"). So
every stack registers itself in SSM Parameter Store, one parameter per stack under
``/orch/healers/`` (the stack creates it and deletes it with itself), holding its region,
account, VPC, selector and state store. Before it uses a store, a command reads the
registrations of its region (one ``GetParametersByPath`` call) and:

- with no ``--state`` given, uses the store of the one deployed healer whose fleet
  overlaps its own (and that healer's VPC), so the lease means what it says;
- with a different store given, or several overlapping healers, refuses to act beside
  them and names them (reads still work, with a note).

Selectors overlap unless some tag is required with two different values: that is the
only case in which no instance can be selected by both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

PREFIX = "/orch/healers/"
PERMISSIONS = frozenset({"ssm:GetParametersByPath"})


class HealerConflict(Exception):
    """Acting here would heal instances a deployed healer manages through another store."""


@dataclass(frozen=True, slots=True)
class Healer:
    stack: str
    region: str
    account: str
    vpc_id: str | None
    selector: Mapping[str, str] = field(default_factory=dict)
    state: str = ""
    mode: str = ""  # heal | dry-run

    def describe(self) -> str:
        where = f"VPC {self.vpc_id}" if self.vpc_id else "every VPC"
        return f"stack {self.stack} ({self.mode or 'mode unknown'}, {where}, store {self.state})"


def parse(name: str, value: str) -> Healer | None:
    """A registration's value; None for one that is not orch's (or is damaged: never trusted)."""
    try:
        data = json.loads(value)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("selector"), dict) or not data.get("state"):
        return None
    return Healer(
        stack=str(data.get("stack") or name.removeprefix(PREFIX)),
        region=str(data.get("region") or ""),
        account=str(data.get("account") or "-"),
        vpc_id=str(data["vpc_id"]) if data.get("vpc_id") else None,
        selector={str(k): str(v) for k, v in data["selector"].items()},
        state=str(data["state"]),
        mode=str(data.get("mode") or ""),
    )


def list_healers(ssm: Any) -> list[Healer]:
    """Every healer registered in the client's region."""
    found = []
    for page in ssm.get_paginator("get_parameters_by_path").paginate(Path=PREFIX, Recursive=True):
        for parameter in page.get("Parameters", []):
            healer = parse(parameter.get("Name", ""), parameter.get("Value", ""))
            if healer is not None:
                found.append(healer)
    return sorted(found, key=lambda h: h.stack)


def overlaps(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    """Could one instance be selected by both? Yes unless a tag is required with two values."""
    return all(a[key] == b[key] for key in a.keys() & b.keys())


@dataclass(frozen=True, slots=True)
class Resolution:
    state: str | None  # the store to use (None: the caller's own choice stands)
    vpc_id: str | None
    account: str
    healer: Healer | None  # the deployed healer adopted, if any
    notes: tuple[str, ...] = ()


def resolve(
    healers: list[Healer],
    selector: Mapping[str, str],
    vpc_id: str | None,
    state_given: str | None,
    acting: bool,
    own_stack: str | None = None,
) -> Resolution:
    """Which store and scope a command must use beside the deployed healers; raises when acting would heal twice."""
    others = [h for h in healers if h.stack != own_stack and overlaps(h.selector, selector) and (vpc_id is None or h.vpc_id in (None, vpc_id))]
    if not others:
        return Resolution(state_given, vpc_id, "-", None)
    names = "; ".join(h.describe() for h in others)
    if state_given is not None:
        different = [h for h in others if h.state != state_given]
        if not different:
            healer = others[0] if len(others) == 1 else None
            return Resolution(state_given, vpc_id or (healer.vpc_id if healer else None), healer.account if healer else "-", healer)
        message = (
            f"a deployed healer manages instances this selector overlaps, through another store: {names}; "
            f"act through its store (--state {different[0].state}, or leave --state out) so its lease holds both"
        )
        if acting:
            raise HealerConflict(message)
        return Resolution(state_given, vpc_id, "-", None, (message,))
    if len(others) > 1:
        message = f"{len(others)} deployed healers overlap this selector: {names}; pick one with --state (and vpc_id)"
        if acting:
            raise HealerConflict(message)
        return Resolution(None, vpc_id, "-", None, (message,))
    healer = others[0]
    note = f"using the store of the deployed healer {healer.describe()}, so that one lease covers both"
    return Resolution(healer.state, vpc_id or healer.vpc_id, healer.account, healer, (note,))
