"""Pure: does a security group let a source in on a port, and does a route table route to it?

Evaluated from what the EC2 describe APIs return, the way AWS evaluates them:

- Security groups are allow-only and stateful; an instance's groups are a union: one
  rule of one group that matches the protocol (``tcp`` or ``-1``, all), the port range
  and a source CIDR containing the address is enough. A rule whose source is another
  security group or a prefix list may match, but from the describe APIs alone orch
  cannot tell whether this host is in that group or list: "cannot tell".
- A subnet uses the route table explicitly associated with it, else its VPC's main one;
  the most specific route whose destination contains the address decides; a
  ``blackhole`` route (its target deleted) drops the traffic. Network ACLs are judged in
  ``orchestrator.doctor.nacl``.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass
from typing import Any, Iterable, Mapping


class Verdict(str, enum.Enum):
    ALLOWED = "allowed"
    DENIED = "denied"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class IngressRule:
    protocol: str  # "tcp", "udp", "icmp", "-1" (all) or a protocol number
    from_port: int | None
    to_port: int | None
    cidrs: tuple[str, ...] = ()
    source_groups: tuple[str, ...] = ()
    prefix_lists: tuple[str, ...] = ()

    def covers(self, port: int) -> bool:
        if self.protocol == "-1":
            return True
        if self.protocol not in ("tcp", "6"):
            return False
        if self.from_port is None or self.to_port is None:
            return True
        return self.from_port <= port <= self.to_port


@dataclass(frozen=True, slots=True)
class SecurityGroup:
    group_id: str
    name: str
    ingress: tuple[IngressRule, ...]


@dataclass(frozen=True, slots=True)
class Route:
    destination: str | None  # a CIDR; None for a prefix-list destination
    target: str
    state: str  # active | blackhole


@dataclass(frozen=True, slots=True)
class RouteTable:
    route_table_id: str
    vpc_id: str
    main: bool
    subnet_ids: tuple[str, ...]
    routes: tuple[Route, ...]


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    detail: str


def _contains(cidr: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(cidr, strict=False)
    except ValueError:
        return False


def ingress_allows(groups: Iterable[SecurityGroup], port: int, source: str) -> Judgement:
    """Whether any of an instance's groups lets ``source`` in on tcp/``port``."""
    groups = list(groups)
    if not groups:
        return Judgement(Verdict.DENIED, "the instance has no security group: nothing is let in")
    maybe: list[str] = []
    for group in groups:
        for rule in group.ingress:
            if not rule.covers(port):
                continue
            for cidr in rule.cidrs:
                if _contains(cidr, source):
                    return Judgement(Verdict.ALLOWED, f"{group.group_id} allows tcp/{port} from {cidr}")
            maybe.extend(f"{group.group_id} from {g}" for g in rule.source_groups)
            maybe.extend(f"{group.group_id} from prefix list {p}" for p in rule.prefix_lists)
    names = ", ".join(g.group_id for g in groups)
    if maybe:
        return Judgement(
            Verdict.UNKNOWN,
            f"tcp/{port} is allowed only {'; '.join(maybe[:3])}: whether {source} is in it cannot be read from the describe APIs",
        )
    return Judgement(Verdict.DENIED, f"no rule of {names} allows tcp/{port} from {source}")


def route_table_for(subnet_id: str, vpc_id: str, tables: Iterable[RouteTable]) -> RouteTable | None:
    """The subnet's own table, else its VPC's main table (as EC2 routes it)."""
    tables = list(tables)
    for table in tables:
        if subnet_id in table.subnet_ids:
            return table
    return next((t for t in tables if t.main and t.vpc_id == vpc_id), None)


def route_to(table: RouteTable | None, source: str) -> Judgement:
    """Whether the table sends replies to ``source``: the most specific route containing it, active."""
    if table is None:
        return Judgement(Verdict.UNKNOWN, "no route table found for the subnet")
    matching = [r for r in table.routes if r.destination is not None and _contains(r.destination, source)]
    if not matching:
        if any(r.destination is None for r in table.routes):
            return Judgement(Verdict.UNKNOWN, f"no CIDR route of {table.route_table_id} contains {source}; its prefix-list routes may")
        return Judgement(Verdict.DENIED, f"{table.route_table_id} has no route to {source}")
    best = max(matching, key=lambda r: ipaddress.ip_network(str(r.destination), strict=False).prefixlen)
    if best.state != "active":
        return Judgement(Verdict.DENIED, f"{table.route_table_id} routes {best.destination} to {best.target}, which is {best.state}")
    return Judgement(Verdict.ALLOWED, f"{table.route_table_id} routes {best.destination} via {best.target}")


# -- from the describe APIs' shapes --------------------------------------------------------


def group_from_api(raw: Mapping[str, Any]) -> SecurityGroup:
    rules = tuple(
        IngressRule(
            protocol=str(p.get("IpProtocol", "-1")),
            from_port=p.get("FromPort"),
            to_port=p.get("ToPort"),
            cidrs=tuple(str(r["CidrIp"]) for r in p.get("IpRanges") or [] if r.get("CidrIp")),
            source_groups=tuple(str(g["GroupId"]) for g in p.get("UserIdGroupPairs") or [] if g.get("GroupId")),
            prefix_lists=tuple(str(x["PrefixListId"]) for x in p.get("PrefixListIds") or [] if x.get("PrefixListId")),
        )
        for p in raw.get("IpPermissions") or []
    )
    return SecurityGroup(str(raw["GroupId"]), str(raw.get("GroupName", "")), rules)


_TARGETS = ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId", "InstanceId",
            "LocalGatewayId", "CarrierGatewayId", "CoreNetworkArn", "EgressOnlyInternetGatewayId")


def route_table_from_api(raw: Mapping[str, Any]) -> RouteTable:
    associations = raw.get("Associations") or []
    routes = tuple(
        Route(
            destination=r.get("DestinationCidrBlock") or None,
            target=next((str(r[k]) for k in _TARGETS if r.get(k)), "unknown"),
            state=str(r.get("State", "active")),
        )
        for r in raw.get("Routes") or []
        if r.get("DestinationCidrBlock") or r.get("DestinationPrefixListId")
    )
    return RouteTable(
        route_table_id=str(raw["RouteTableId"]),
        vpc_id=str(raw.get("VpcId", "")),
        main=any(a.get("Main") for a in associations),
        subnet_ids=tuple(str(a["SubnetId"]) for a in associations if a.get("SubnetId")),
        routes=routes,
    )
