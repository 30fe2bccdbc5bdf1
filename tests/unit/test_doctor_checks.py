"""`orch doctor`'s pure part: facts and a fixed `now` -> rows of ok / FAIL / cannot tell."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orchestrator.doctor.checks import (
    ClockFacts,
    DoctorFacts,
    IdentityFacts,
    InstancePath,
    InventoryFacts,
    MetricFacts,
    NetworkFacts,
    SimulationFacts,
    Status,
    StoreFacts,
    clock_check,
    metric_checks,
    network_checks,
    passed,
    permission_checks,
    run_checks,
    simulation_principal,
    store_checks,
)
from orchestrator.doctor.network import (
    IngressRule,
    Route,
    RouteTable,
    SecurityGroup,
    Verdict,
    group_from_api,
    ingress_allows,
    route_table_for,
    route_table_from_api,
    route_to,
)
from orchestrator.model import ProbeOutcome
from orchestrator.state.store import Lease, PauseState
from tests.unit.test_doctor_nacl import DEFAULT_ACL

NOW = datetime(2026, 12, 2, 10, 0, tzinfo=timezone.utc)
SSH = IngressRule("tcp", 22, 22, cidrs=("127.0.0.0/8",))
OPEN = SecurityGroup("sg-open", "ssh", (SSH,))
WEB = SecurityGroup("sg-web", "web", (IngressRule("tcp", 443, 443, cidrs=("0.0.0.0/0",)),))
VIA_VPN = RouteTable("rtb-main", "vpc-1", True, (), (Route("127.20.0.0/16", "local", "active"), Route("127.0.0.0/8", "vgw-1", "active")))


@pytest.mark.parametrize(
    "groups, source, verdict",
    [
        ([OPEN], "127.0.0.1", Verdict.ALLOWED),
        ([WEB], "127.0.0.1", Verdict.DENIED),  # another port only
        ([WEB, OPEN], "127.0.0.1", Verdict.ALLOWED),  # groups are a union
        ([OPEN], "10.0.0.5", Verdict.DENIED),  # the CIDR does not hold the source
        ([], "127.0.0.1", Verdict.DENIED),
        ([SecurityGroup("sg-all", "all", (IngressRule("-1", None, None, cidrs=("0.0.0.0/0",)),))], "10.1.2.3", Verdict.ALLOWED),
        ([SecurityGroup("sg-range", "r", (IngressRule("tcp", 20, 30, cidrs=("127.0.0.1/32",)),))], "127.0.0.1", Verdict.ALLOWED),
        ([SecurityGroup("sg-udp", "u", (IngressRule("udp", 22, 22, cidrs=("0.0.0.0/0",)),))], "127.0.0.1", Verdict.DENIED),
        ([SecurityGroup("sg-ref", "ref", (IngressRule("tcp", 22, 22, source_groups=("sg-bastion",)),))], "127.0.0.1", Verdict.UNKNOWN),
        ([SecurityGroup("sg-pl", "pl", (IngressRule("tcp", 22, 22, prefix_lists=("pl-1",)),))], "127.0.0.1", Verdict.UNKNOWN),
    ],
)
def test_security_groups_against_the_source(groups, source, verdict) -> None:
    assert ingress_allows(groups, 22, source).verdict is verdict


@pytest.mark.parametrize(
    "routes, verdict",
    [
        (VIA_VPN.routes, Verdict.ALLOWED),
        ((Route("127.20.0.0/16", "local", "active"),), Verdict.DENIED),  # only the VPC itself
        ((Route("0.0.0.0/0", "igw-1", "active"), Route("127.0.0.0/8", "vgw-1", "blackhole")), Verdict.DENIED),  # most specific wins
        ((Route("0.0.0.0/0", "igw-1", "active"),), Verdict.ALLOWED),
        ((Route(None, "tgw-1", "active"),), Verdict.UNKNOWN),  # a prefix-list destination
    ],
)
def test_the_route_back_to_the_source(routes, verdict) -> None:
    assert route_to(RouteTable("rtb-1", "vpc-1", True, (), routes), "127.0.0.1").verdict is verdict


def test_a_subnet_uses_its_own_table_else_the_main_one() -> None:
    own = RouteTable("rtb-own", "vpc-1", False, ("subnet-a",), ())
    assert route_table_for("subnet-a", "vpc-1", [VIA_VPN, own]) is own
    assert route_table_for("subnet-b", "vpc-1", [VIA_VPN, own]) is VIA_VPN
    assert route_table_for("subnet-b", "vpc-2", [VIA_VPN, own]) is None


def test_describe_shapes_are_read() -> None:
    group = group_from_api({"GroupId": "sg-1", "GroupName": "x", "IpPermissions": [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}], "UserIdGroupPairs": [{"GroupId": "sg-2"}]}]})
    assert group.ingress == (IngressRule("tcp", 22, 22, ("10.0.0.0/8",), ("sg-2",), ()),)
    table = route_table_from_api({"RouteTableId": "rtb-1", "VpcId": "vpc-1", "Associations": [{"Main": False, "SubnetId": "subnet-a"}],
                                  "Routes": [{"DestinationCidrBlock": "0.0.0.0/0", "NatGatewayId": "nat-1", "State": "active"}]})
    assert table == RouteTable("rtb-1", "vpc-1", False, ("subnet-a",), (Route("0.0.0.0/0", "nat-1", "active"),))


@pytest.mark.parametrize(
    "arn, principal",
    [
        ("arn:aws:iam::123456789012:user/alice", "arn:aws:iam::123456789012:user/alice"),
        ("arn:aws:sts::123456789012:assumed-role/OrchOperator/alice@example.com", "arn:aws:iam::123456789012:role/OrchOperator"),
        ("arn:aws-cn:sts::123456789012:assumed-role/R/s", "arn:aws-cn:iam::123456789012:role/R"),
        ("arn:aws:iam::123456789012:root", None),
        ("arn:aws:sts::123456789012:federated-user/bob", None),
        ("not an arn", None),
    ],
)
def test_the_principal_to_simulate(arn, principal) -> None:
    assert simulation_principal(arn) == principal


NEEDED = frozenset({"ec2:DescribeInstances", "ec2:RebootInstances"})


def test_permissions_denied_are_each_a_failure_with_the_fix() -> None:
    rows = permission_checks(SimulationFacts("arn:aws:iam::1:user/a", {"ec2:DescribeInstances": "allowed", "ec2:RebootInstances": "implicitDeny"}), NEEDED, "orch permissions")
    assert [(r.subject, r.status) for r in rows] == [("1 actions", Status.OK), ("ec2:RebootInstances", Status.FAIL)]
    assert "grant ec2:RebootInstances" in rows[1].fix and "implicitDeny" in rows[1].detail


@pytest.mark.parametrize(
    "facts",
    [SimulationFacts("arn:aws:iam::1:user/a", error="access denied calling SimulatePrincipalPolicy"), SimulationFacts(None)],
)
def test_a_simulator_that_cannot_answer_is_cannot_tell_never_ok(facts) -> None:
    (row,) = permission_checks(facts, NEEDED, "orch permissions")
    assert row.status is Status.UNKNOWN and not passed([row])


def test_store_lease_and_pause() -> None:
    lease = Lease("-/us-east-1/*", "alice@host:42", NOW + timedelta(minutes=3), 7)
    rows = store_checks(StoreFacts("dynamodb://t", dynamodb=True, lease=lease, pause=PauseState(NOW - timedelta(hours=1), "bob@x", "change freeze"), scope="s"), NOW)
    assert [(r.check, r.status) for r in rows] == [("state store", Status.OK), ("lease", Status.OK), ("pause", Status.FAIL)]
    assert "held by alice@host:42 until 2026-12-02 10:03:00 UTC" in rows[1].detail
    assert "paused by bob@x since 2026-12-02 09:00:00 UTC: change freeze" in rows[2].detail and "orch resume" in rows[2].fix
    expired = store_checks(StoreFacts("f", lease=Lease("s", "old", NOW - timedelta(minutes=1), 1)), NOW)[1]
    assert "expired" in expired.detail and expired.status is Status.OK
    denied = store_checks(StoreFacts("dynamodb://t", dynamodb=True, write_error="access denied calling PutItem"), NOW)[0]
    assert denied.status is Status.FAIL and "dynamodb:PutItem" in denied.fix
    unopened = store_checks(StoreFacts("dynamodb://t", opened=False, read_error="the table does not exist", dynamodb=True), NOW)
    assert [r.status for r in unopened] == [Status.FAIL]


def path(instance_id: str, groups: tuple[SecurityGroup, ...] | None = (OPEN,), probe: ProbeOutcome | None = ProbeOutcome.OK) -> InstancePath:
    return InstancePath(instance_id, "", "127.20.1.5", 22, "127.0.0.1", "subnet-a", "vpc-1", groups, probe)


def test_network_rows_name_the_failing_instance_and_fold_the_rest() -> None:
    facts = NetworkFacts((path("i-1"), path("i-2", groups=(WEB,)), path("i-3", probe=ProbeOutcome.REFUSED)), (VIA_VPN,))
    rows = network_checks(facts, {"i-2": "web-2"})
    failing = [(r.check, r.subject) for r in rows if r.status is Status.FAIL]
    assert failing == [("security group", "i-2 (web-2)"), ("probe", "i-3")]
    (group_row,) = [r for r in rows if r.status is Status.FAIL and r.check == "security group"]
    assert "--group-id sg-web --protocol tcp --port 22 --cidr 127.0.0.1/32" in group_row.fix
    assert ("security group", "2 of 3 instances", Status.OK) in [(r.check, r.subject, r.status) for r in rows]
    assert ("route", "all 3 instances", Status.OK) in [(r.check, r.subject, r.status) for r in rows]


def test_no_route_back_and_unreadable_groups() -> None:
    facts = NetworkFacts((path("i-1", groups=None),), (RouteTable("rtb-1", "vpc-1", True, (), (Route("127.20.0.0/16", "local", "active"),)),))
    rows = {r.check: r for r in network_checks(facts, {})}
    assert rows["security group"].status is Status.UNKNOWN
    assert rows["route"].status is Status.FAIL and "rtb-1 has no route to 127.0.0.1" in rows["route"].detail and "rtb-1" in rows["route"].fix
    assert network_checks(NetworkFacts(error="access denied"), {})[0].status is Status.UNKNOWN


def test_metrics_recent_or_stale_per_instance() -> None:
    facts = MetricFacts("CWAgent", "mem_used_percent", {"i-1": NOW - timedelta(minutes=2), "i-2": NOW - timedelta(minutes=11), "i-3": None})
    rows = metric_checks(facts, NOW, 10, {})
    assert [(r.subject, r.status) for r in rows] == [("i-2", Status.FAIL), ("i-3", Status.FAIL), ("1 of 3 instances", Status.OK)]
    assert "09:49:00" in rows[0].detail and "no datapoint" in rows[1].detail and "orch agent install" in rows[1].fix


@pytest.mark.parametrize(
    "skew, status",
    [(timedelta(0), Status.OK), (timedelta(seconds=1), Status.OK), (timedelta(seconds=-45), Status.OK),
     (timedelta(seconds=61), Status.FAIL), (timedelta(minutes=-7), Status.FAIL)],
)
def test_clock_skew(skew, status) -> None:
    row = clock_check(ClockFacts(NOW + skew, NOW, "AWS STS"))
    assert row.status is status
    if status is Status.FAIL:
        assert ("ahead of" if skew > timedelta(0) else "behind") in row.detail and row.fix
    assert clock_check(ClockFacts(NOW, None, "AWS STS")).status is Status.UNKNOWN


def facts(**changes) -> DoctorFacts:
    base = dict(
        identity=IdentityFacts("arn:aws:iam::1:user/a", "1"),
        simulation=SimulationFacts("arn:aws:iam::1:user/a", {a: "allowed" for a in NEEDED}),
        store=StoreFacts("f", scope="s"),
        inventory=InventoryFacts("orch:managed=true", "us-east-1", 1),
        network=NetworkFacts((path("i-1"),), (VIA_VPN,), network_acls=(DEFAULT_ACL,)),
        metrics=MetricFacts("CWAgent", "mem_used_percent", {"i-1": NOW}),
        clock=ClockFacts(NOW, NOW, "AWS STS"),
    )
    base.update(changes)
    return DoctorFacts(**base)


def test_every_check_passing_passes_and_any_other_does_not() -> None:
    rows = run_checks(facts(), NOW, NEEDED, "orch permissions")
    assert passed(rows) and [r.check for r in rows] == [
        "credentials", "permissions", "state store", "lease", "pause", "instances", "security group", "network acl", "route", "probe", "metrics", "clock"]
    assert not passed(run_checks(facts(identity=IdentityFacts(error="no AWS credentials found")), NOW, NEEDED, "p"))
    assert not passed(run_checks(facts(clock=ClockFacts(NOW, None)), NOW, NEEDED, "p"))


def test_no_instance_selected_fails_and_skips_the_per_instance_checks() -> None:
    rows = run_checks(facts(inventory=InventoryFacts("team=x", "us-east-1", 0)), NOW, NEEDED, "p")
    (row,) = [r for r in rows if r.check == "instances"]
    assert row.status is Status.FAIL and "create-tags" in row.fix
    assert not [r for r in rows if r.check in ("security group", "network acl", "route", "probe", "metrics")]
