"""The facts `orch doctor` checks, gathered with boto3, the store and a real probe.

Each gatherer turns its own failure into a fact (the one line ``describe_aws_error``
makes) instead of raising, so one denied call becomes one failed or "cannot tell" row
and the other checks still run. The decisions are in ``orchestrator.doctor.checks``.
"""

from __future__ import annotations

import socket
import uuid
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Iterable, Mapping

from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from orchestrator.aws import AWS_CALL_ERRORS, describe_aws_error
from orchestrator.config import ProbeSettings, Settings
from orchestrator.doctor.checks import (
    ClockFacts,
    IdentityFacts,
    InstancePath,
    MetricFacts,
    NetworkFacts,
    SimulationFacts,
    StoreFacts,
)
from orchestrator.doctor.fail2ban import SAMPLE, SCRIPT, Jails, parse
from orchestrator.doctor.nacl import EPHEMERAL, NetworkAcl, acl_from_api
from orchestrator.doctor.network import group_from_api, route_table_from_api
from orchestrator.doctor.resources import ANY as ANY_RESOURCE
from orchestrator.doctor.resources import Where, by_resource
from orchestrator.model import Instance, ProbeResult
from orchestrator.observe.metrics import MemoryReader
from orchestrator.observe.ssm import agents_online
from orchestrator.state import DYNAMODB_SCHEME
from orchestrator.state.store import StateError, StateStore

PERMISSIONS = frozenset({"iam:SimulatePrincipalPolicy", "ec2:DescribeSecurityGroups", "ec2:DescribeRouteTables", "ec2:DescribeNetworkAcls"})
SIMULATE_PERMISSIONS = frozenset({"iam:SimulatePrincipalPolicy"})  # authorized on the IAM user or role simulated
# AWS documents that GetCallerIdentity needs no permission (an explicit deny does not stop it).
NO_PERMISSION_NEEDED = frozenset({"sts:GetCallerIdentity"})
FILTER_VALUES = 200  # subnet or VPC ids per filter: few calls for a big fleet, each request kept small
SIMULATE_BATCH = 100  # action names per SimulatePrincipalPolicy call, well under its request size

Clock = Callable[[], datetime]
Prober = Callable[[Mapping[str, Any], ProbeSettings], Mapping[str, ProbeResult]]


def identity(sts: Any, clock: Clock) -> tuple[IdentityFacts, ClockFacts]:
    """Who the credentials are, and this host's clock against the reply's Date header."""
    try:
        reply = sts.get_caller_identity()
    except AWS_CALL_ERRORS as exc:
        return IdentityFacts(error=describe_aws_error(exc, "sts:GetCallerIdentity")), ClockFacts(source="sts")
    local = clock()
    return IdentityFacts(arn=reply.get("Arn"), account=reply.get("Account")), ClockFacts(local, reply_date(reply), "AWS STS")


def reply_date(reply: Mapping[str, Any]) -> datetime | None:
    """The HTTP Date header of a boto3 reply (RFC 7231), or None when absent or unreadable."""
    text = (reply.get("ResponseMetadata") or {}).get("HTTPHeaders", {}).get("date")
    if not text:
        return None
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None


DECISION_RANK = {"allowed": 0, "implicitDeny": 1, "explicitDeny": 2}


def _worse(a: str | None, b: str) -> str:
    return b if a is None or DECISION_RANK.get(b, 3) > DECISION_RANK.get(a, 3) else a


def simulate(iam: Any, principal: str | None, actions: Iterable[str], selector: Mapping[str, str], where: Where | None = None) -> SimulationFacts:
    """The IAM policy simulator's decision for each action, on the resource orch calls it on, with the selector tag as context.

    The tag goes in as ``aws:ResourceTag/KEY`` so that statements conditioned on it (the
    template's mutations) are evaluated as they are for a selected instance. Each action
    is simulated on its own resource (``doctor.resources``): without ResourceArns the
    simulator judges ``*``, and resource-scoped statements read implicitDeny. An action's
    decision is the worst over its results and their ResourceSpecificResults.
    ``iam`` should make one attempt: a simulator that is denied or absent is "cannot
    tell", not worth five retries.
    """
    if principal is None:
        return SimulationFacts(None)
    context = [
        {"ContextKeyName": f"aws:ResourceTag/{key}", "ContextKeyValues": [value], "ContextKeyType": "string"}
        for key, value in sorted(selector.items())
    ]
    decisions: dict[str, str] = {}
    try:
        for resource, names in by_resource(sorted(actions), where).items():
            for start in range(0, len(names), SIMULATE_BATCH):
                kwargs: dict[str, Any] = {"PolicySourceArn": principal, "ActionNames": names[start : start + SIMULATE_BATCH], "ContextEntries": context}
                if resource != ANY_RESOURCE:
                    kwargs["ResourceArns"] = [resource]
                while True:
                    reply = iam.simulate_principal_policy(**kwargs)
                    for result in reply.get("EvaluationResults", []):
                        action = str(result.get("EvalActionName"))
                        decisions[action] = _worse(decisions.get(action), str(result.get("EvalDecision")))
                        for specific in result.get("ResourceSpecificResults") or []:
                            decisions[action] = _worse(decisions[action], str(specific.get("EvalResourceDecision")))
                    if not reply.get("IsTruncated"):
                        break
                    kwargs["Marker"] = reply["Marker"]
    except AWS_CALL_ERRORS as exc:
        return SimulationFacts(principal, error=describe_aws_error(exc, "iam:SimulatePrincipalPolicy"))
    return SimulationFacts(principal, decisions)


def store_facts(open_store: Callable[[], StateStore], spec_of: Callable[[], str], scope_of: Callable[[], str]) -> StoreFacts:
    """Open, read (lease and pause), then write and delete a probe item.

    ``spec_of`` and ``scope_of`` are asked after opening: beside a deployed healer,
    opening the store decides which store it is and the account and VPC of the lease.
    """
    try:
        store = open_store()
    except StateError as exc:
        spec = spec_of()
        return StoreFacts(spec, opened=False, read_error=str(exc), dynamodb=spec.startswith(DYNAMODB_SCHEME))
    spec, scope = spec_of(), scope_of()
    dynamodb = spec.startswith(DYNAMODB_SCHEME)
    try:
        lease, pause = store.get_lease(scope), store.get_pause()
    except StateError as exc:
        return StoreFacts(spec, read_error=str(exc), dynamodb=dynamodb, scope=scope)
    try:
        store.probe_write(uuid.uuid4().hex[:12])
    except StateError as exc:
        return StoreFacts(spec, write_error=str(exc), dynamodb=dynamodb, lease=lease, pause=pause, scope=scope)
    return StoreFacts(spec, dynamodb=dynamodb, lease=lease, pause=pause, scope=scope)


def local_source(address: str, port: int) -> str | None:
    """The address this host sends from to reach ``address`` (the kernel's route choice).

    A UDP connect sends nothing; it only asks the kernel which source address the route
    to ``address`` uses. Behind NAT or a proxy the instance sees another address: pass
    ``--source`` then.
    """
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect((address, port))
            return str(sock.getsockname()[0])
    except OSError:
        return None


def local_port_range(path: str = "/proc/sys/net/ipv4/ip_local_port_range") -> tuple[int, int] | None:
    """The ephemeral ports this host's kernel gives outgoing connections (Linux), or None."""
    try:
        with open(path, encoding="ascii") as handle:
            low, high = (int(x) for x in handle.read().split()[:2])
    except (OSError, ValueError):
        return None
    return (low, high) if 0 < low <= high <= 65535 else None


def network_acls(ec2: Any, subnets: Mapping[str, str]) -> tuple[tuple[NetworkAcl, ...] | None, str | None]:
    """The network ACL of each subnet (subnet id -> VPC id): its association, else the VPC's default.

    EC2 associates every subnet with exactly one ACL (the default until another is
    associated), so the association filter should find all of them; a subnet it does not
    find falls back to its VPC's default ACL, as EC2 itself does. A failure is returned
    as its one line (None for the ACLs): "cannot tell", and the other checks still run.
    """
    ids = sorted(subnets)
    found: dict[str, NetworkAcl] = {}
    try:
        paginator = ec2.get_paginator("describe_network_acls")
        for start in range(0, len(ids), FILTER_VALUES):
            chunk = ids[start : start + FILTER_VALUES]
            for page in paginator.paginate(Filters=[{"Name": "association.subnet-id", "Values": chunk}]):
                found.update((a["NetworkAclId"], acl_from_api(a)) for a in page.get("NetworkAcls", []))
        covered = {s for acl in found.values() for s in acl.subnet_ids}
        vpcs = sorted({subnets[s] for s in ids if s not in covered and subnets[s]})
        for start in range(0, len(vpcs), FILTER_VALUES):
            filters = [{"Name": "default", "Values": ["true"]}, {"Name": "vpc-id", "Values": vpcs[start : start + FILTER_VALUES]}]
            for page in paginator.paginate(Filters=filters):
                found.update((a["NetworkAclId"], acl_from_api(a)) for a in page.get("NetworkAcls", []))
    except AWS_CALL_ERRORS as exc:
        return None, describe_aws_error(exc, "ec2:DescribeNetworkAcls")
    return tuple(found[k] for k in sorted(found)), None


def network(
    ec2: Any,
    instances: Iterable[Instance],
    settings: ProbeSettings,
    use_public: bool,
    source: str | None,
    prober: Prober,
) -> NetworkFacts:
    """Security groups and route tables from the describe APIs, and one probe per instance."""
    chosen = list(instances)
    port = settings.port
    address = {i.instance_id: (i.public_ip if use_public else i.private_ip) for i in chosen}
    group_ids = sorted({g for i in chosen for g in i.security_group_ids})
    vpc_ids = sorted({i.vpc_id for i in chosen if i.vpc_id})
    try:
        groups = {}
        if group_ids:
            pages = ec2.get_paginator("describe_security_groups").paginate(GroupIds=group_ids)
            groups = {g["GroupId"]: group_from_api(g) for page in pages for g in page.get("SecurityGroups", [])}
        tables = []
        if vpc_ids:
            pages = ec2.get_paginator("describe_route_tables").paginate(Filters=[{"Name": "vpc-id", "Values": vpc_ids}])
            tables = [route_table_from_api(t) for page in pages for t in page.get("RouteTables", [])]
    except AWS_CALL_ERRORS as exc:
        return NetworkFacts(error=describe_aws_error(exc))
    acls, acl_error = network_acls(ec2, {i.subnet_id: i.vpc_id or "" for i in chosen if i.subnet_id})
    # The replies go to the prober's ephemeral port: this kernel's range when orch probes
    # from here, AWS's advised 1024-65535 for a --source (a NAT or proxy picks its own).
    return_ports = (local_port_range() if source is None else None) or EPHEMERAL
    once = settings.model_copy(update={"attempts": 1, "retry_window": 0.0})
    probed = prober({i: a for i, a in address.items() if a}, once)
    paths = []
    for inst in chosen:
        where = address[inst.instance_id]
        result = probed.get(inst.instance_id)
        paths.append(
            InstancePath(
                instance_id=inst.instance_id,
                name=inst.name,
                address=where,
                port=port,
                source=source or (local_source(where, port) if where else None),
                subnet_id=inst.subnet_id,
                vpc_id=inst.vpc_id,
                groups=tuple(groups[g] for g in inst.security_group_ids if g in groups),
                probe=result.outcome if result else None,
                probe_detail=(result.last.detail or result.last.banner or "") if result else "",
            )
        )
    return NetworkFacts(tuple(paths), tuple(tables), network_acls=acls, network_acl_error=acl_error, return_ports=return_ports)


def metric_presence(cloudwatch: Any, instance_ids: Iterable[str], settings: Settings, now: datetime) -> MetricFacts:
    """The newest memory datapoint of each instance, read the way a sweep reads it."""
    memory = settings.memory
    reader = MemoryReader(cloudwatch, memory.namespace, memory.metric, timedelta(minutes=memory.window_minutes), memory.period_seconds)
    try:
        series = reader.read(instance_ids, now)
    except AWS_CALL_ERRORS as exc:
        return MetricFacts(memory.namespace, memory.metric, error=describe_aws_error(exc))
    return MetricFacts(memory.namespace, memory.metric, {i: (s.latest[0] if s.latest else None) for i, s in series.items()})


FAIL2BAN_PENDING = frozenset({"Pending", "InProgress", "Delayed"})


def fail2ban_jails(read: Any, mutate: Any, instance_ids: Iterable[str], sleep: Callable[[float], None],
                   wait_seconds: float = 60.0, poll_seconds: float = 2.0) -> list[Jails] | str:
    """fail2ban's ssh jails on a few instances whose SSM agent is online, read with AWS-RunShellScript (read-only commands).

    Returns [] when no agent is online (or SSM cannot say): the check needs one, and its
    absence is no fault of orch's setup; the one line saying why when the command could
    not be sent (SendCommand denied).
    """
    try:
        online = sorted(i for i, ok in agents_online(read, instance_ids).items() if ok)[:SAMPLE]
    except AWS_CALL_ERRORS:
        return []
    if not online:
        return []
    try:
        command = mutate.send_command(InstanceIds=online, DocumentName="AWS-RunShellScript", Parameters={"commands": [SCRIPT]},
                                      Comment="orch doctor: fail2ban ignoreip (read-only)", TimeoutSeconds=60)["Command"]["CommandId"]
    except AWS_CALL_ERRORS as exc:
        return describe_aws_error(exc, "ssm:SendCommand")

    def invocation(instance_id: str) -> Mapping[str, Any]:
        try:
            return dict(read.get_command_invocation(CommandId=command, InstanceId=instance_id))
        except AWS_CALL_ERRORS as exc:
            if "InvocationDoesNotExist" in str(exc):  # not visible yet (Run Command is eventually consistent)
                return {"Status": "Pending"}
            return {"Status": "Error", "StatusDetails": describe_aws_error(exc, "ssm:GetCommandInvocation")}

    found = []
    attempts = max(1, int(wait_seconds / poll_seconds)) + 1
    for instance_id in online:
        reply = Retrying(retry=retry_if_result(lambda r: r.get("Status") in FAIL2BAN_PENDING), stop=stop_after_attempt(attempts),
                         wait=wait_fixed(poll_seconds), sleep=sleep,
                         retry_error_callback=lambda state: state.outcome.result() if state.outcome else {})(lambda: invocation(instance_id))
        if reply.get("Status") == "Success":
            found.append(parse(instance_id, str(reply.get("StandardOutputContent", ""))))
        else:
            found.append(Jails(instance_id, error=f"{reply.get('Status', 'no answer')} {reply.get('StatusDetails', '')}".strip()))
    return found
