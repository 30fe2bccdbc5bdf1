"""Pure: the facts `orch doctor` gathered -> one list of checks, each ok, FAIL or cannot tell.

Nothing here calls AWS or reads a clock: ``orchestrator.doctor.gather`` collects the
facts (an error becomes a fact too, as the one line ``describe_aws_error`` makes), and
``now`` is passed in, so every rule is a table-driven unit test with fixed timestamps
(``tests/unit/test_doctor_checks.py``). A failure always carries the fix; "cannot tell"
says why orch could not find out, and never counts as passing.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Mapping, Sequence

from orchestrator.doctor.nacl import DEFAULT_RULE, EPHEMERAL, AclJudgement, NetworkAcl, acl_for, inbound, outbound_return
from orchestrator.doctor.network import RouteTable, SecurityGroup, Verdict, ingress_allows, route_table_for, route_to
from orchestrator.model import ProbeOutcome
from orchestrator.state.store import Lease, PauseState

CLOCK_SKEW_LIMIT = timedelta(seconds=60)
"""More than this between here and AWS fails the check. AWS refuses signatures at 5
minutes (RequestTimeTooSkewed), but orch's leases (5 minutes), debounce (20 s) and
metric staleness (10 minutes) are judged on this host's clock against timestamps from
AWS and from other hosts: a minute already distorts them."""
DATE_RESOLUTION = timedelta(seconds=1)  # the HTTP Date header counts whole seconds


class Status(str, enum.Enum):
    OK = "ok"
    FAIL = "FAIL"
    UNKNOWN = "cannot tell"


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: str
    subject: str
    status: Status
    detail: str
    fix: str = ""


# -- facts ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IdentityFacts:
    arn: str | None = None
    account: str | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SimulationFacts:
    """The policy simulator's decision per action (``allowed``, ``implicitDeny``, ``explicitDeny``)."""

    principal: str | None
    decisions: Mapping[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass(frozen=True, slots=True)
class StoreFacts:
    spec: str
    opened: bool = True
    read_error: str | None = None
    write_error: str | None = None
    dynamodb: bool = False
    lease: Lease | None = None
    pause: PauseState | None = None
    scope: str = ""


@dataclass(frozen=True, slots=True)
class InstancePath:
    """What orch knows about the way from here to one instance's SSH port."""

    instance_id: str
    name: str
    address: str | None
    port: int
    source: str | None  # the address the instance sees the probe come from
    subnet_id: str | None = None
    vpc_id: str | None = None
    groups: tuple[SecurityGroup, ...] | None = None  # None: could not be read
    probe: ProbeOutcome | None = None
    probe_detail: str = ""


@dataclass(frozen=True, slots=True)
class NetworkFacts:
    instances: tuple[InstancePath, ...] = ()
    route_tables: tuple[RouteTable, ...] | None = None  # None: could not be read
    error: str | None = None  # the describe calls failed: nothing below is known
    network_acls: tuple[NetworkAcl, ...] | None = None  # None: could not be read (network_acl_error says why)
    network_acl_error: str | None = None
    return_ports: tuple[int, int] = EPHEMERAL  # the prober's ephemeral ports, which the replies go to


@dataclass(frozen=True, slots=True)
class MetricFacts:
    namespace: str
    metric: str
    latest: Mapping[str, datetime | None] = field(default_factory=dict)  # instance id -> newest datapoint
    error: str | None = None


@dataclass(frozen=True, slots=True)
class ClockFacts:
    local: datetime | None = None  # this host's clock when the reply arrived
    remote: datetime | None = None  # the reply's Date header
    source: str = ""


@dataclass(frozen=True, slots=True)
class InventoryFacts:
    selector: str
    region: str
    count: int = 0
    error: str | None = None


@dataclass(frozen=True, slots=True)
class DoctorFacts:
    identity: IdentityFacts
    simulation: SimulationFacts
    store: StoreFacts
    inventory: InventoryFacts
    network: NetworkFacts
    metrics: MetricFacts
    clock: ClockFacts
    stale_minutes: float = 10.0
    names: Mapping[str, str] = field(default_factory=dict)  # instance id -> Name, for the rows


# -- checks --------------------------------------------------------------------------------


def identity_check(facts: IdentityFacts) -> CheckResult:
    if facts.error is not None:
        return CheckResult(
            "credentials", "sts:GetCallerIdentity", Status.FAIL, facts.error,
            "give orch credentials: --profile or AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (then `aws sts get-caller-identity`)",
        )
    return CheckResult("credentials", facts.arn or "-", Status.OK, f"account {facts.account or '-'}")


def simulation_principal(arn: str) -> str | None:
    """The principal the simulator takes for a caller: an assumed role's session is its role.

    ``arn:aws:sts::123:assumed-role/NAME/SESSION`` -> ``arn:aws:iam::123:role/NAME``; a
    role with a path (``/team/NAME``) is not recoverable from the session ARN, which
    drops the path, and the simulator then says the role does not exist: "cannot tell".
    A federated user or the root account has no IAM principal to simulate.
    """
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        return None
    _, partition, service, _, account, resource = parts
    if service == "iam" and (resource.startswith("user/") or resource.startswith("role/")):
        return arn
    if service == "sts" and resource.startswith("assumed-role/"):
        pieces = resource.split("/")
        if len(pieces) >= 3:
            return f"arn:{partition}:iam::{account}:role/{pieces[1]}"
    return None


def permission_checks(facts: SimulationFacts, needed: frozenset[str], policy_hint: str) -> list[CheckResult]:
    """One row for the allowed actions, one per action denied; one row when it cannot tell."""
    if facts.principal is None:
        return [CheckResult("permissions", f"{len(needed)} actions", Status.UNKNOWN,
                            facts.error or "the caller is no IAM user or role the policy simulator can evaluate")]
    if facts.error is not None:
        return [CheckResult("permissions", f"{len(needed)} actions", Status.UNKNOWN, f"the IAM policy simulator: {facts.error}",
                            "grant iam:SimulatePrincipalPolicy on yourself so orch doctor can check, or compare your policy with "
                            + policy_hint)]
    rows: list[CheckResult] = []
    denied = sorted(a for a in needed if facts.decisions.get(a) != "allowed")
    allowed = len(needed) - len(denied)
    if allowed:
        rows.append(CheckResult("permissions", f"{allowed} actions", Status.OK, f"allowed for {facts.principal} (IAM policy simulator)"))
    for action in denied:
        decision = facts.decisions.get(action, "not evaluated")
        rows.append(CheckResult("permissions", action, Status.FAIL, f"{decision} for {facts.principal}",
                                f"grant {action} (the whole policy: {policy_hint})"))
    return rows


def store_checks(facts: StoreFacts, now: datetime) -> list[CheckResult]:
    which = "the DynamoDB table" if facts.dynamodb else "the SQLite file"
    if not facts.opened or facts.read_error is not None:
        fix = ("check the table name in --state / ORCH_STATE and grant dynamodb:GetItem, Query, BatchGetItem on it"
               if facts.dynamodb else "check the path in --state / ORCH_STATE and that this user may read it")
        return [CheckResult("state store", facts.spec, Status.FAIL, facts.read_error or "cannot be opened", fix)]
    rows = []
    if facts.write_error is not None:
        fix = ("grant dynamodb:PutItem and dynamodb:DeleteItem on the table" if facts.dynamodb
               else "make the file and its directory writable by this user")
        rows.append(CheckResult("state store", facts.spec, Status.FAIL, f"read, but a probe item could not be written: {facts.write_error}", fix))
    else:
        rows.append(CheckResult("state store", facts.spec, Status.OK, f"{which}: read, wrote and deleted a probe item"))
    lease = facts.lease
    if lease is None or not lease.owner:
        rows.append(CheckResult("lease", facts.scope, Status.OK, "free"))
    elif lease.expires_at > now:
        rows.append(CheckResult("lease", facts.scope, Status.OK,
                                f"held by {lease.owner} until {_when(lease.expires_at)}: a sweep is running (orch heal waits or exits 4)"))
    else:
        rows.append(CheckResult("lease", facts.scope, Status.OK,
                                f"last held by {lease.owner}, expired {_when(lease.expires_at)}: the next sweep takes it over"))
    if facts.pause is None:
        rows.append(CheckResult("pause", facts.spec, Status.OK, "not paused"))
    else:
        reason = f": {facts.pause.reason}" if facts.pause.reason else ""
        rows.append(CheckResult("pause", facts.spec, Status.FAIL, f"paused by {facts.pause.by} since {_when(facts.pause.paused_at)}{reason}; sweeps take no action",
                                "orch resume, once the reason for the pause is gone"))
    return rows


def inventory_check(facts: InventoryFacts) -> CheckResult:
    if facts.error is not None:
        return CheckResult("instances", facts.selector, Status.FAIL, facts.error, "grant ec2:DescribeInstances; check --region and --profile")
    if facts.count == 0:
        return CheckResult("instances", facts.selector, Status.FAIL, f"no instance matches the selector in {facts.region}",
                           "tag the fleet with the selector (e.g. aws ec2 create-tags --tags Key=orch:managed,Value=true), or check --selector and --region")
    return CheckResult("instances", facts.selector, Status.OK, f"{facts.count} selected in {facts.region}")


def network_checks(facts: NetworkFacts, names: Mapping[str, str]) -> list[CheckResult]:
    """Per instance: security groups, network ACL (both ways), route, probe; passing instances folded into one row per check."""
    if facts.error is not None:
        return [CheckResult("ssh path", "security groups, routes", Status.UNKNOWN, facts.error,
                            "grant ec2:DescribeSecurityGroups and ec2:DescribeRouteTables")]
    rows: list[CheckResult] = []
    group_ok: list[str] = []
    acl_ok: list[str] = []
    route_ok: list[str] = []
    probe_ok: list[str] = []
    if facts.network_acls is None:
        rows.append(CheckResult("network acl", "network ACLs", Status.UNKNOWN,
                                facts.network_acl_error or "the subnets' network ACLs could not be read",
                                "grant ec2:DescribeNetworkAcls"))
    for path in facts.instances:
        who = _who(path.instance_id, names)
        port = path.port
        if path.address is None or path.source is None:
            rows.append(CheckResult("ssh path", who, Status.UNKNOWN, "the instance has no address to probe (probe.address)"))
            continue
        # Security groups.
        if path.groups is None:
            rows.append(CheckResult("security group", who, Status.UNKNOWN, "its security groups could not be read"))
        else:
            judged = ingress_allows(path.groups, port, path.source)
            if judged.verdict is Verdict.ALLOWED:
                group_ok.append(who)
            else:
                group = path.groups[0].group_id if path.groups else "sg-..."
                fix = (f"aws ec2 authorize-security-group-ingress --group-id {group} --protocol tcp --port {port} --cidr {path.source}/32"
                       " (or the CIDR orch runs from)")
                rows.append(CheckResult("security group", who, Status.FAIL if judged.verdict is Verdict.DENIED else Status.UNKNOWN,
                                        judged.detail, fix if judged.verdict is Verdict.DENIED else ""))
        # Network ACL: the probe in, and its reply out (stateless).
        dropped_by: list[AclJudgement] = []
        if facts.network_acls is not None:
            acl = acl_for(path.subnet_id or "", path.vpc_id or "", facts.network_acls) if path.subnet_id else None
            if acl is None:
                rows.append(CheckResult("network acl", who, Status.UNKNOWN, f"no network ACL found for subnet {path.subnet_id or '-'}"))
            else:
                judged_acl = (inbound(acl, path.source, port), outbound_return(acl, path.source, facts.return_ports))
                dropped_by = [j for j in judged_acl if j.verdict is not Verdict.ALLOWED]
                if not dropped_by:
                    acl_ok.append(who)
                rows.extend(CheckResult("network acl", who, Status.FAIL, j.detail, j.fix) for j in dropped_by)
        # Route.
        if facts.route_tables is None or path.subnet_id is None:
            rows.append(CheckResult("route", who, Status.UNKNOWN, "the subnet's route table could not be read"))
        else:
            table = route_table_for(path.subnet_id, path.vpc_id or "", facts.route_tables)
            judged = route_to(table, path.source)
            if judged.verdict is Verdict.ALLOWED:
                route_ok.append(who)
            else:
                where = table.route_table_id if table else "the subnet's route table"
                fix = (f"add a route to {path.source} in {where} (through a VPN, peering or transit gateway), "
                       "or run orch from inside the VPC (orch deploy)")
                rows.append(CheckResult("route", who, Status.FAIL if judged.verdict is Verdict.DENIED else Status.UNKNOWN,
                                        judged.detail, fix if judged.verdict is Verdict.DENIED else ""))
        # The probe itself.
        outcome = path.probe
        if outcome is ProbeOutcome.OK:
            probe_ok.append(who)
        elif outcome is None or outcome in (ProbeOutcome.ERROR, ProbeOutcome.NO_ADDRESS):
            rows.append(CheckResult("probe", who, Status.UNKNOWN, path.probe_detail or "the probe could not run here"))
        else:
            rows.append(CheckResult("probe", who, Status.FAIL, f"{path.address}:{port} {outcome.value} {path.probe_detail}".strip(),
                                    _probe_fix(outcome, path, dropped_by)))
    port = facts.instances[0].port if facts.instances else 0
    for check, who, text in (
        ("security group", group_ok, f"allow tcp/{port} from here"),
        ("network acl", acl_ok, f"have a network ACL letting tcp/{port} in and its replies out"),
        ("route", route_ok, "have a route back to here"),
        ("probe", probe_ok, "answered with an SSH banner"),
    ):
        if who:
            rows.append(CheckResult(check, _count(who, len(facts.instances)), Status.OK, f"{len(who)} {text}"))
    return sorted(rows, key=lambda r: (_NETWORK_ORDER.index(r.check), r.status is Status.OK, r.subject))


_NETWORK_ORDER = ("ssh path", "security group", "network acl", "route", "probe")


def _probe_fix(outcome: ProbeOutcome, path: InstancePath, dropped_by: Sequence[AclJudgement] = ()) -> str:
    if outcome is ProbeOutcome.NO_ROUTE:
        return "this host has no route to the instance: fix the local routing / firewall, or run orch inside the VPC"
    if outcome is ProbeOutcome.REFUSED:
        return f"nothing listens on port {path.port}: start sshd, or set probe.port to the port sshd listens on"
    if outcome is ProbeOutcome.CONNECT_TIMEOUT and dropped_by:
        cause = "; ".join(f"{j.acl_id} rule {'*' if j.deciding_rule == DEFAULT_RULE else j.deciding_rule}" for j in dropped_by)
        return f"the subnet's network ACL drops it ({cause}): see the network acl row for this instance"
    if outcome is ProbeOutcome.CONNECT_TIMEOUT:
        return "the connection was dropped on the way: the security group, a network ACL or the route (see the rows above)"
    if outcome is ProbeOutcome.NOT_SSH:
        return f"something other than sshd answers on port {path.port}: set probe.port to sshd's port"
    if outcome is ProbeOutcome.RESET:
        return "the connection was reset: sshd's MaxStartups, a firewall rejecting, or a box in trouble (orch explain INSTANCE)"
    return "sshd accepted but sent no banner: the failure orch heals (orch explain INSTANCE, orch heal)"


def metric_checks(facts: MetricFacts, now: datetime, stale_minutes: float, names: Mapping[str, str]) -> list[CheckResult]:
    what = f"{facts.namespace}/{facts.metric}"
    if facts.error is not None:
        return [CheckResult("metrics", what, Status.UNKNOWN, facts.error, "grant cloudwatch:ListMetrics and cloudwatch:GetMetricData")]
    limit = now - timedelta(minutes=stale_minutes)
    fresh = [i for i, t in facts.latest.items() if t is not None and t >= limit]
    rows = []
    for instance_id, latest in sorted(facts.latest.items()):
        if latest is not None and latest >= limit:
            continue
        seen = f"the newest datapoint is from {_when(latest)}" if latest else "no datapoint in the window"
        rows.append(CheckResult("metrics", _who(instance_id, names), Status.FAIL, f"{what}: {seen}",
                                f"install the CloudWatch agent publishing {what} (orch agent install), and let it reach CloudWatch"))
    if fresh:
        rows.append(CheckResult("metrics", _count(fresh, len(facts.latest)), Status.OK,
                                f"{len(fresh)} report {what} (newest within {stale_minutes:g} min)"))
    return rows


def clock_check(facts: ClockFacts) -> CheckResult:
    if facts.local is None or facts.remote is None:
        return CheckResult("clock", facts.source or "-", Status.UNKNOWN, "no Date header in the AWS reply to compare with")
    skew = facts.local - facts.remote
    size = abs(skew)
    direction = "ahead of" if skew > timedelta(0) else "behind"
    if size <= DATE_RESOLUTION:
        return CheckResult("clock", facts.source, Status.OK, "this host's clock agrees with AWS's to the second")
    text = f"this host's clock is {size.total_seconds():.0f} s {direction} {facts.source}'s"
    if size > CLOCK_SKEW_LIMIT:
        return CheckResult("clock", facts.source, Status.FAIL, text,
                           "synchronise the clock (chrony or systemd-timesyncd with an NTP source, e.g. the Amazon Time Sync Service)")
    return CheckResult("clock", facts.source, Status.OK, text + f" (within {CLOCK_SKEW_LIMIT.total_seconds():.0f} s)")


def run_checks(facts: DoctorFacts, now: datetime, needed: frozenset[str], policy_hint: str) -> list[CheckResult]:
    """Every check, in the order a person fixes them: who am I, may I, where do I record, can I reach."""
    rows = [identity_check(facts.identity)]
    rows += permission_checks(facts.simulation, needed, policy_hint)
    rows += store_checks(facts.store, now)
    rows.append(inventory_check(facts.inventory))
    if facts.inventory.error is None and facts.inventory.count:
        rows += network_checks(facts.network, facts.names)
        rows += metric_checks(facts.metrics, now, facts.stale_minutes, facts.names)
    rows.append(clock_check(facts.clock))
    return rows


def passed(rows: list[CheckResult]) -> bool:
    """Exit 0 only when every check passes: "cannot tell" is not a pass."""
    return all(r.status is Status.OK for r in rows)


def _who(instance_id: str, names: Mapping[str, str]) -> str:
    name = names.get(instance_id)
    return f"{instance_id} ({name})" if name else instance_id


def _count(passing: list[str], total: int) -> str:
    """The subject of a row folding the instances that passed: their count, not their names."""
    return f"all {total} instances" if len(passing) == total else f"{len(passing)} of {total} instances"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"
