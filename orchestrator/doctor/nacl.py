"""Pure: does a subnet's network ACL let the probe in on its port, and its reply back out?

Evaluated from what DescribeNetworkAcls returns, the way AWS documents evaluating it
(EC2 API Reference, NetworkAclEntry and CreateNetworkAclEntry; VPC User Guide, Network ACLs):

- Every subnet is associated with exactly one network ACL: the one whose
  ``Associations`` name it, else its VPC's default ACL (``IsDefault``).
- Inbound (``Egress`` false) and outbound (``Egress`` true) rules are separate lists,
  each processed in ascending ``RuleNumber``; the first rule that matches the packet
  decides, allow or deny. Rule 32767 (shown as ``*``) denies what no rule matched and
  cannot be changed.
- A rule matches on protocol (``"-1"`` is every protocol, and then every port; ``"6"`` is
  TCP, with its ``PortRange`` of destination ports), and on ``CidrBlock`` containing the
  far end's IPv4 address (an ``Ipv6CidrBlock`` rule never matches an IPv4 address).
- ACLs are stateless: a probe to tcp/22 let in still needs its reply, from port 22 to
  the prober's ephemeral port, let out. Which ephemeral port a connection gets is the
  prober's choice, so every port of the prober's range must be let out; one denied
  sub-range means some probes time out and others do not.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from orchestrator.doctor.network import Judgement, Verdict

DEFAULT_RULE = 32767  # the "*" rule every ACL ends with: deny
TCP = ("6", "tcp")
EPHEMERAL = (1024, 65535)
"""AWS's advice for return traffic to clients of every kind; used when orch cannot read the
range the prober's own kernel uses (a ``--source`` behind NAT picks its own ports)."""


@dataclass(frozen=True, slots=True)
class AclEntry:
    rule_number: int
    egress: bool
    protocol: str  # "-1" (all), "6" (TCP), "17", "1", ... as DescribeNetworkAcls returns it
    allow: bool
    cidr: str | None = None  # IPv4; None when the rule is IPv6-only
    ipv6_cidr: str | None = None
    port_from: int | None = None
    port_to: int | None = None

    @property
    def label(self) -> str:
        return "*" if self.rule_number == DEFAULT_RULE else str(self.rule_number)

    def matches_tcp_to(self, address: str) -> bool:
        """Protocol and address match TCP to/from ``address``; ports are judged by the caller."""
        if self.protocol != "-1" and self.protocol.lower() not in TCP:
            return False
        if self.cidr is None:
            return False
        try:
            return ipaddress.ip_address(address) in ipaddress.ip_network(self.cidr, strict=False)
        except ValueError:
            return False

    def ports(self) -> tuple[int, int]:
        """The destination ports it covers: every port for protocol -1 or no range given."""
        if self.protocol == "-1" or self.port_from is None or self.port_to is None:
            return (0, 65535)
        return (self.port_from, self.port_to)


@dataclass(frozen=True, slots=True)
class NetworkAcl:
    acl_id: str
    vpc_id: str
    default: bool
    subnet_ids: tuple[str, ...]
    entries: tuple[AclEntry, ...]

    def rules(self, egress: bool) -> list[AclEntry]:
        return sorted((e for e in self.entries if e.egress is egress), key=lambda e: e.rule_number)


@dataclass(frozen=True, slots=True)
class Decision:
    """Who decided one run of ports: the rule (None: no rule at all, which AWS's ``*`` denies)."""

    ports: tuple[int, int]
    allowed: bool
    rule: AclEntry | None


@dataclass(frozen=True, slots=True)
class AclJudgement(Judgement):
    acl_id: str = ""
    deciding_rule: int | None = None  # the rule number that denied (or allowed), None: none matched
    fix: str = ""


def acl_for(subnet_id: str, vpc_id: str, acls: Iterable[NetworkAcl]) -> NetworkAcl | None:
    """The subnet's associated ACL, else its VPC's default one (as EC2 filters subnet traffic)."""
    acls = list(acls)
    for acl in acls:
        if subnet_id in acl.subnet_ids:
            return acl
    return next((a for a in acls if a.default and a.vpc_id == vpc_id), None)


def decide(rules: Iterable[AclEntry], address: str, ports: tuple[int, int]) -> list[Decision]:
    """First match wins, per destination port: the runs of ``ports`` and the rule deciding each."""
    open_runs = [ports]
    decided: list[Decision] = []
    for rule in sorted(rules, key=lambda e: e.rule_number):
        if not open_runs:
            break
        if not rule.matches_tcp_to(address):
            continue
        low, high = rule.ports()
        remaining = []
        for start, end in open_runs:
            if end < low or start > high:
                remaining.append((start, end))
                continue
            decided.append(Decision((max(start, low), min(end, high)), rule.allow, rule))
            if start < low:
                remaining.append((start, low - 1))
            if end > high:
                remaining.append((high + 1, end))
        open_runs = remaining
    decided.extend(Decision(run, False, None) for run in open_runs)
    return sorted(decided, key=lambda d: d.ports)


def inbound(acl: NetworkAcl, source: str, port: int) -> AclJudgement:
    """Whether ``acl`` lets tcp/``port`` in from ``source``."""
    (decision,) = decide(acl.rules(egress=False), source, (port, port))
    if decision.allowed:
        return AclJudgement(Verdict.ALLOWED, f"{acl.acl_id} rule {_label(decision)} allows tcp/{port} in from {source}",
                            acl.acl_id, _number(decision))
    before = _free_number(acl.rules(egress=False), decision)
    fix = (f"allow TCP {port} in from {source}/32 in {acl.acl_id} before rule {_label(decision)}: "
           + _allow_command(acl.acl_id, "--ingress", before, (port, port), source))
    return AclJudgement(Verdict.DENIED, f"{acl.acl_id} rule {_label(decision)} denies tcp/{port} in from {source}",
                        acl.acl_id, _number(decision), fix)


def outbound_return(acl: NetworkAcl, source: str, ports: tuple[int, int]) -> AclJudgement:
    """Whether ``acl`` lets the replies out to ``source`` on every port of the ephemeral ``ports``."""
    decisions = decide(acl.rules(egress=True), source, ports)
    denied = [d for d in decisions if not d.allowed]
    span = f"{ports[0]}-{ports[1]}"
    if not denied:
        rules = ", ".join(str(n) for n in sorted({_number(d) for d in decisions}))
        return AclJudgement(Verdict.ALLOWED, f"{acl.acl_id} rule {rules} allows replies out to {source} tcp/{span}",
                            acl.acl_id, _number(decisions[0]))
    first = min(denied, key=lambda d: d.rule.rule_number if d.rule else DEFAULT_RULE)
    runs = ", ".join(_run(d.ports) for d in denied)
    whole = len(denied) == len(decisions) and len(denied) == 1
    what = f"replies out to {source} tcp/{span}" if whole else f"replies out to {source} on tcp/{runs} (of {span})"
    before = _free_number(acl.rules(egress=True), first)
    fix = (f"allow TCP {span} out to {source}/32 in {acl.acl_id} before rule {_label(first)}: "
           + _allow_command(acl.acl_id, "--egress", before, ports, source))
    return AclJudgement(Verdict.DENIED, f"{acl.acl_id} rule {_label(first)} denies {what}: the probe's reply is dropped",
                        acl.acl_id, _number(first), fix)


def _allow_command(acl_id: str, direction: str, rule_number: int | str, ports: tuple[int, int], source: str) -> str:
    """The AWS CLI line that adds the missing allow rule, ready to paste."""
    return (f"aws ec2 create-network-acl-entry --network-acl-id {acl_id} {direction} --rule-number {rule_number} "
            f"--protocol tcp --port-range From={ports[0]},To={ports[1]} --cidr-block {source}/32 --rule-action allow")


def _label(decision: Decision) -> str:
    return decision.rule.label if decision.rule else "*"


def _number(decision: Decision) -> int:
    return decision.rule.rule_number if decision.rule else DEFAULT_RULE


def _run(ports: tuple[int, int]) -> str:
    return str(ports[0]) if ports[0] == ports[1] else f"{ports[0]}-{ports[1]}"


def _free_number(rules: list[AclEntry], decision: Decision) -> int | str:
    """The highest unused rule number below the deciding one (rule numbers are 1-32766)."""
    limit = _number(decision)
    taken = {r.rule_number for r in rules}
    return next((n for n in range(min(limit, DEFAULT_RULE) - 1, 0, -1) if n not in taken), "N (renumber: no number is free below it)")


# -- from the describe API's shape ---------------------------------------------------------


def acl_from_api(raw: Mapping[str, Any]) -> NetworkAcl:
    """One element of DescribeNetworkAcls' ``NetworkAcls``."""
    entries = []
    for e in raw.get("Entries") or []:
        ports = e.get("PortRange") or {}
        entries.append(AclEntry(
            rule_number=int(e.get("RuleNumber", DEFAULT_RULE)),
            egress=bool(e.get("Egress")),
            protocol=str(e.get("Protocol", "-1")),
            allow=str(e.get("RuleAction", "deny")).lower() == "allow",
            cidr=e.get("CidrBlock") or None,
            ipv6_cidr=e.get("Ipv6CidrBlock") or None,
            port_from=ports.get("From"),
            port_to=ports.get("To"),
        ))
    return NetworkAcl(
        acl_id=str(raw["NetworkAclId"]),
        vpc_id=str(raw.get("VpcId", "")),
        default=bool(raw.get("IsDefault")),
        subnet_ids=tuple(str(a["SubnetId"]) for a in raw.get("Associations") or [] if a.get("SubnetId")),
        entries=tuple(entries),
    )
