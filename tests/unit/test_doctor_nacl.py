"""Network ACLs judged as AWS documents evaluating them, from DescribeNetworkAcls' shapes.

The shapes are the EC2 API Reference's: ``NetworkAcls`` of ``NetworkAclId``, ``VpcId``,
``IsDefault``, ``Associations`` (``NetworkAclAssociationId``, ``NetworkAclId``,
``SubnetId``) and ``Entries`` (``RuleNumber``, ``Egress``, ``Protocol`` as a protocol
number string, ``"-1"`` for all, ``RuleAction``, ``CidrBlock`` or ``Ipv6CidrBlock``,
``PortRange`` ``From``/``To``). A VPC's default ACL allows everything at rule 100 and
ends, like every ACL, with rule 32767 (``*``) denying the rest.
"""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.doctor.checks import InstancePath, NetworkFacts, Status, network_checks
from orchestrator.doctor.nacl import AclEntry, NetworkAcl, acl_for, acl_from_api, decide, inbound, outbound_return
from orchestrator.doctor.network import IngressRule, Route, RouteTable, SecurityGroup, Verdict
from orchestrator.model import ProbeOutcome

SOURCE = "127.0.0.1"
LINUX = (32768, 60999)  # Linux's default ip_local_port_range


def entry(number: int, action: str, egress: bool = False, protocol: str = "-1", cidr: str | None = "0.0.0.0/0",
          ports: tuple[int, int] | None = None, ipv6: str | None = None) -> dict[str, Any]:
    made: dict[str, Any] = {"RuleNumber": number, "RuleAction": action, "Egress": egress, "Protocol": protocol}
    if cidr:
        made["CidrBlock"] = cidr
    if ipv6:
        made["Ipv6CidrBlock"] = ipv6
    if ports:
        made["PortRange"] = {"From": ports[0], "To": ports[1]}
    return made


STAR = [entry(32767, "deny"), entry(32767, "deny", egress=True)]
ALLOW_ALL = [entry(100, "allow"), entry(100, "allow", egress=True), *STAR]


def acl(entries: list[dict[str, Any]], acl_id: str = "acl-custom", default: bool = False, subnets: tuple[str, ...] = ("subnet-a",)) -> NetworkAcl:
    return acl_from_api({
        "NetworkAclId": acl_id, "VpcId": "vpc-1", "IsDefault": default, "OwnerId": "123456789012", "Tags": [],
        "Associations": [{"NetworkAclAssociationId": f"aclassoc-{s}", "NetworkAclId": acl_id, "SubnetId": s} for s in subnets],
        "Entries": entries,
    })


DEFAULT_ACL = acl(ALLOW_ALL, "acl-default", default=True)


@pytest.mark.parametrize(
    "entries, verdict, rule",
    [
        (ALLOW_ALL, Verdict.ALLOWED, 100),
        (STAR, Verdict.DENIED, 32767),  # a new custom ACL: only the * rules
        ([entry(90, "deny", protocol="6", cidr="127.0.0.0/8", ports=(22, 22)), *ALLOW_ALL], Verdict.DENIED, 90),
        ([entry(90, "allow", protocol="6", cidr="127.0.0.1/32", ports=(22, 22)), entry(100, "deny"), *STAR], Verdict.ALLOWED, 90),
        ([entry(200, "allow"), entry(100, "deny", protocol="6", ports=(22, 22)), *STAR], Verdict.DENIED, 100),  # by number, not list order
        ([entry(100, "allow", protocol="6", ports=(20, 30)), *STAR], Verdict.ALLOWED, 100),
        ([entry(100, "allow", protocol="6", ports=(443, 443)), *STAR], Verdict.DENIED, 32767),
        ([entry(100, "allow", protocol="17", ports=(22, 22)), *STAR], Verdict.DENIED, 32767),  # UDP is not the probe
        ([entry(100, "allow", protocol="-1", ports=(80, 80)), *STAR], Verdict.ALLOWED, 100),  # -1: every port, whatever the range
        ([entry(100, "allow", protocol="6", cidr=None, ipv6="::/0", ports=(22, 22)), *STAR], Verdict.DENIED, 32767),
        ([entry(100, "allow", protocol="6", cidr="10.0.0.0/8", ports=(22, 22)), *STAR], Verdict.DENIED, 32767),
        ([entry(100, "allow", egress=True), *STAR], Verdict.DENIED, 32767),  # an outbound rule lets nothing in
    ],
)
def test_the_probe_in(entries, verdict, rule) -> None:
    judged = inbound(acl(entries), SOURCE, 22)
    assert (judged.verdict, judged.deciding_rule, judged.acl_id) == (verdict, rule, "acl-custom")


@pytest.mark.parametrize(
    "entries, verdict, rule, denied_text",
    [
        (ALLOW_ALL, Verdict.ALLOWED, 100, None),
        ([entry(100, "allow", egress=True, protocol="6", cidr="127.0.0.0/8", ports=(1024, 65535)), *STAR], Verdict.ALLOWED, 100, None),
        ([entry(100, "allow", egress=True, protocol="6", ports=(32768, 65535)), *STAR], Verdict.ALLOWED, 100, None),
        ([entry(100, "allow", egress=True, protocol="6", ports=(49152, 65535)), *STAR], Verdict.DENIED, 32767, "tcp/32768-49151 (of"),
        ([entry(90, "deny", egress=True, protocol="6", ports=(40000, 40100)), *ALLOW_ALL], Verdict.DENIED, 90, "tcp/40000-40100 (of"),
        ([entry(100, "allow", egress=True, protocol="6", ports=(22, 22)), *STAR], Verdict.DENIED, 32767, "tcp/32768-60999:"),
        ([entry(100, "deny", egress=True, cidr="127.0.0.0/8"), entry(200, "allow", egress=True), *STAR], Verdict.DENIED, 100, "tcp/32768-60999:"),
        ([entry(100, "allow"), *STAR], Verdict.DENIED, 32767, "tcp/32768-60999:"),  # inbound allowed, the reply is not
    ],
)
def test_the_reply_out(entries, verdict, rule, denied_text) -> None:
    judged = outbound_return(acl(entries), SOURCE, LINUX)
    assert (judged.verdict, judged.deciding_rule) == (verdict, rule)
    if denied_text:
        assert denied_text in judged.detail and "acl-custom" in judged.detail


def test_first_match_per_port_splits_a_range() -> None:
    rules = [AclEntry(100, True, "6", True, "0.0.0.0/0", port_from=1024, port_to=2047), AclEntry(110, True, "-1", False, "127.0.0.0/8")]
    got = [(d.ports, d.allowed, d.rule.rule_number if d.rule else None) for d in decide(rules, SOURCE, (1000, 3000))]
    assert got == [((1000, 1023), False, 110), ((1024, 2047), True, 100), ((2048, 3000), False, 110)]
    assert [(d.ports, d.rule) for d in decide([], SOURCE, (22, 22))] == [((22, 22), None)]  # no rule: AWS's * denies


def test_the_fix_names_the_acl_a_free_rule_number_and_the_command() -> None:
    denied = inbound(acl([entry(89, "allow", protocol="6", ports=(80, 80)), entry(90, "deny", protocol="6", ports=(22, 22)), *ALLOW_ALL]), SOURCE, 22)
    assert denied.detail == "acl-custom rule 90 denies tcp/22 in from 127.0.0.1"
    assert denied.fix.startswith("allow TCP 22 in from 127.0.0.1/32 in acl-custom before rule 90: ")
    assert "--network-acl-id acl-custom --ingress --rule-number 88 --protocol tcp --port-range From=22,To=22 --cidr-block 127.0.0.1/32" in denied.fix
    star = outbound_return(acl(STAR), SOURCE, LINUX)
    assert "before rule *" in star.fix and "--egress --rule-number 32766" in star.fix and "From=32768,To=60999" in star.fix
    crowded = inbound(acl([entry(1, "deny"), *STAR]), SOURCE, 22)
    assert "renumber" in crowded.fix


def test_a_subnet_uses_its_associated_acl_else_the_default() -> None:
    own = acl(STAR, "acl-own", subnets=("subnet-a",))
    default = acl(ALLOW_ALL, "acl-default", default=True, subnets=())
    assert acl_for("subnet-a", "vpc-1", [default, own]) is own
    assert acl_for("subnet-b", "vpc-1", [default, own]) is default
    assert acl_for("subnet-b", "vpc-2", [default, own]) is None


def test_the_describe_shape_is_read() -> None:
    made = acl([entry(100, "allow", protocol="6", cidr="127.0.0.0/8", ports=(22, 22)), entry(101, "allow", cidr=None, ipv6="::/0")],
               subnets=("subnet-a", "subnet-b"))
    assert made.subnet_ids == ("subnet-a", "subnet-b") and not made.default
    assert made.entries == (
        AclEntry(100, False, "6", True, "127.0.0.0/8", None, 22, 22),
        AclEntry(101, False, "-1", True, None, "::/0", None, None),
    )


# -- the doctor's rows -----------------------------------------------------------------------

OPEN = SecurityGroup("sg-open", "ssh", (IngressRule("tcp", 22, 22, cidrs=("127.0.0.0/8",)),))
VIA_VPN = RouteTable("rtb-main", "vpc-1", True, (), (Route("127.0.0.0/8", "vgw-1", "active"),))


def path(instance_id: str, subnet: str = "subnet-a", probe: ProbeOutcome = ProbeOutcome.CONNECT_TIMEOUT, source: str | None = SOURCE) -> InstancePath:
    return InstancePath(instance_id, "", "127.20.1.5", 22, source, subnet, "vpc-1", (OPEN,), probe)


def test_a_denying_acl_is_a_failed_row_and_the_timeout_points_to_it() -> None:
    denying = acl([entry(90, "deny", protocol="6", ports=(22, 22)), *ALLOW_ALL], "acl-blocks", subnets=("subnet-a",))
    default = acl(ALLOW_ALL, "acl-default", default=True, subnets=("subnet-b",))
    facts = NetworkFacts((path("i-1"), path("i-2", "subnet-b", ProbeOutcome.OK)), (VIA_VPN,), network_acls=(denying, default), return_ports=LINUX)
    rows = network_checks(facts, {"i-1": "web-1"})
    (row,) = [r for r in rows if r.check == "network acl" and r.status is Status.FAIL]
    assert row.subject == "i-1 (web-1)" and "acl-blocks rule 90 denies tcp/22" in row.detail and "before rule 90" in row.fix
    assert ("network acl", "1 of 2 instances", Status.OK) in [(r.check, r.subject, r.status) for r in rows]
    (probe,) = [r for r in rows if r.check == "probe" and r.status is Status.FAIL]
    assert "network ACL drops it (acl-blocks rule 90)" in probe.fix
    assert [r.check for r in rows].index("network acl") < [r.check for r in rows].index("route")


def test_both_directions_denied_are_two_rows_and_the_star_is_named() -> None:
    facts = NetworkFacts((path("i-1"),), (VIA_VPN,), network_acls=(acl(STAR),), return_ports=LINUX)
    rows = [r for r in network_checks(facts, {}) if r.check == "network acl"]
    assert [r.status for r in rows] == [Status.FAIL, Status.FAIL]
    assert {"in from" in r.detail for r in rows} == {True, False} and all("rule *" in r.detail for r in rows)
    (probe,) = [r for r in network_checks(facts, {}) if r.check == "probe"]
    assert "acl-custom rule *" in probe.fix


def test_unreadable_acls_are_one_cannot_tell_row_and_an_unknown_source_is_not_judged() -> None:
    error = "access denied calling DescribeNetworkAcls: the caller lacks the IAM permission ec2:DescribeNetworkAcls (no)"
    rows = network_checks(NetworkFacts((path("i-1"), path("i-2")), (VIA_VPN,), network_acl_error=error), {})
    (row,) = [r for r in rows if r.check == "network acl"]
    assert row.status is Status.UNKNOWN and "ec2:DescribeNetworkAcls" in row.detail and row.fix == "grant ec2:DescribeNetworkAcls"
    assert all("drops it (" not in r.fix for r in rows if r.check == "probe")  # no ACL named as the cause
    unknown = network_checks(NetworkFacts((path("i-1", source=None),), (VIA_VPN,), network_acls=(acl(STAR),)), {})
    assert [(r.check, r.status) for r in unknown] == [("ssh path", Status.UNKNOWN)]
    lost = network_checks(NetworkFacts((path("i-1", subnet="subnet-z"),), (VIA_VPN,), network_acls=(acl(STAR, subnets=("subnet-a",)),)), {})
    assert [(r.check, r.status) for r in lost if r.check == "network acl"] == [("network acl", Status.UNKNOWN)]
