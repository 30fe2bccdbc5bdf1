"""The IAM policy a person needs to run each `orch` command by hand (`orch permissions`).

Built from the same declarations as the CloudFormation role (``orchestrator.iam.permissions``
and each adapter's ``PERMISSIONS``): a command declares which adapters it uses, never a
list of action names of its own, and ``tests/aws/test_command_permissions.py`` runs each
command under moto with every API call recorded and checks that none of them needs an
action its policy leaves out.

Resources are scoped as the template scopes them: mutations only on instances (and Auto
Scaling groups) carrying the selector tag, the healer registry's parameters by ARN, and
the state table, evidence bucket and topic by ARN when the settings name them; ``*``
otherwise, and the notes say which statements are that wide. The account is ``*`` (the
policy is made without an AWS call; the tag condition is what scopes the mutations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Iterable

from orchestrator.act import autoscaling as act_autoscaling
from orchestrator.act import ec2 as act_ec2
from orchestrator.act import evidence
from orchestrator.act import ssm as act_ssm
from orchestrator.alerting import notify
from orchestrator.config import Settings
from orchestrator.doctor import gather as doctor_gather
from orchestrator.estate import registry
from orchestrator.iam import deploy as deploy_permissions
from orchestrator.iam import permissions
from orchestrator.observe import console, inventory, metrics
from orchestrator.onboard import agent_install, discover
from orchestrator.state import DYNAMODB_SCHEME, dynamodb, ssm_lease

VERSION = "2012-10-17"

# What commands do with the state store. A DynamoDB store is used when --state names one,
# or when a deployed healer's registration leads a manual run to its table; SQLite needs
# no IAM at all.
OPEN_STORE = registry.PERMISSIONS  # every command that opens the store reads the healer registry first
STORE_READ = OPEN_STORE | dynamodb.READ_PERMISSIONS
STORE_WRITE = STORE_READ | dynamodb.WRITE_PERMISSIONS
BY_NAME = inventory.PERMISSIONS  # an INSTANCE argument given as a Name tag
SCAN = permissions.READ | STORE_WRITE  # a scan-mode sweep records what it learned and its sweep record


@dataclass(frozen=True, slots=True)
class CommandNeeds:
    """What one command calls, as the union of the adapters it uses."""

    name: str
    summary: str
    actions: frozenset[str]
    sweep_features: bool = False  # plus what the settings turn on for a sweep (run command, diagnostic interrupt)
    uploads_code: bool = False  # writes to orch deploy's --bucket, which the settings do not name
    operates: bool = True  # runs the healer (what orch doctor checks), rather than deploying it
    shell: bool = True  # its ssm:SendCommand runs the settings' document (a shell); False: only the agent's documents

    def for_settings(self, settings: Settings) -> frozenset[str]:
        if not self.sweep_features:
            return self.actions
        return self.actions | permissions.for_settings(settings)


COMMANDS: tuple[CommandNeeds, ...] = (
    CommandNeeds("scan", "observe and diagnose; records what it learned", SCAN),
    CommandNeeds("heal", "a whole sweep: observe, act on selected instances, record, notify", STORE_WRITE | permissions.SWEEP, sweep_features=True),
    CommandNeeds("explain", "one instance: a scan of it, its console output, its history", SCAN | console.PERMISSIONS),
    CommandNeeds("report", "a scan, grouped", SCAN),
    CommandNeeds("status", "the selected instances and the store", BY_NAME | STORE_READ),
    CommandNeeds("history", "actions recorded (an instance by id or Name)", BY_NAME | STORE_READ),
    CommandNeeds("pause", "set the pause flag", STORE_WRITE),
    CommandNeeds("resume", "delete the pause flag", STORE_READ | dynamodb.CLI_ONLY_PERMISSIONS),
    CommandNeeds("release", "reset one instance's ladder (by id or Name)", BY_NAME | STORE_WRITE),
    CommandNeeds(
        "doctor",
        "every check of orch doctor",
        doctor_gather.PERMISSIONS | BY_NAME | metrics.PERMISSIONS | STORE_READ | dynamodb.DOCTOR_PERMISSIONS,
    ),
    CommandNeeds("reboot", "one instance (by id or Name) rebooted with a sweep's care", BY_NAME | STORE_WRITE | permissions.SWEEP, sweep_features=True),
    CommandNeeds("stop-start", "one instance (by id or Name) stopped and started with a sweep's care", BY_NAME | STORE_WRITE | permissions.SWEEP,
                 sweep_features=True),
    CommandNeeds("init", "find the fleet (instances, --asg groups) and tag it with the selector", permissions.INIT, operates=False),
    CommandNeeds("agent", "orch agent check and install: the agent's metrics, SSM registration, its config parameter, Run Command",
                 permissions.AGENT_CHECK | permissions.AGENT_INSTALL, operates=False, shell=False),
    CommandNeeds("guard", "plan, apply, status, remove of the host guard through SSM Run Command", permissions.GUARD | BY_NAME | STORE_READ),
    CommandNeeds("deploy", "change sets or a stack set, the code upload, and every resource of the stack", deploy_permissions.DEPLOY,
                 uploads_code=True, operates=False),
    CommandNeeds("destroy", "deleting the stack and its resources", deploy_permissions.DESTROY, operates=False),
)
NAMES: tuple[str, ...] = tuple(c.name for c in COMMANDS)
OPERATING: tuple[str, ...] = tuple(c.name for c in COMMANDS if c.operates)


def command(name: str) -> CommandNeeds:
    for needs in COMMANDS:
        if needs.name == name:
            return needs
    raise KeyError(f"{name} is not an orch command that calls AWS (one of {', '.join(NAMES)})")


def policy_for(names: Iterable[str], settings: Settings, region: str | None = None) -> Policy:
    """The policy for running the named commands with these settings."""
    chosen = list(names)
    uploads = any(command(n).uploads_code for n in chosen)
    sends = [command(n) for n in chosen if act_ssm.PERMISSIONS <= command(n).for_settings(settings)]
    shell = any(c.shell for c in sends)
    agent = any(not c.shell for c in sends)
    return policy(actions_for(chosen, settings), Scope.from_settings(settings, region), code_upload=uploads, run_command=shell, agent=agent)


def actions_for(names: Iterable[str], settings: Settings) -> frozenset[str]:
    """The union of what the named commands call with these settings."""
    found: set[str] = set()
    for name in names:
        found |= command(name).for_settings(settings)
    return frozenset(found)


# -- resources ----------------------------------------------------------------------------

ON_TAGGED_INSTANCES = (act_ec2.PERMISSIONS - permissions.READ) | console.PERMISSIONS | act_ec2.DIAGNOSTIC_INTERRUPT_PERMISSIONS | act_ssm.PERMISSIONS
ON_TAGGED_GROUPS = act_autoscaling.PERMISSIONS
ON_DOCUMENT = act_ssm.PERMISSIONS  # SendCommand is authorized on the instance and on the document
ON_REGISTRY = registry.PERMISSIONS
ON_LEASE = ssm_lease.PERMISSIONS  # the fleet's lease parameters, /orch/lease/...; reading them is HealerRegistry's
ON_TABLE = dynamodb.PERMISSIONS | dynamodb.DOCTOR_PERMISSIONS
ON_BUCKET = evidence.PERMISSIONS
ON_TOPIC = notify.PERMISSIONS
ON_PRINCIPALS = doctor_gather.SIMULATE_PERMISSIONS
TAGGING = discover.TAG_PERMISSIONS  # `orch init`: the instances are not tagged yet; the tags it may set are the condition
ON_AGENT_DOCUMENTS = act_ssm.PERMISSIONS  # SendCommand of the agent's install and configure documents


@dataclass(frozen=True, slots=True)
class Scope:
    """What the settings know about the resources; None where they do not."""

    region: str
    selector: dict[str, str]
    table: str | None = None
    bucket: str | None = None
    topic_arn: str | None = None
    ssm_document: str = "AWS-RunShellScript"
    partition: str = "aws"

    @classmethod
    def from_settings(cls, settings: Settings, region: str | None = None) -> Scope:
        """``region``: the one the AWS profile or environment gives, when the settings name none."""
        state = (settings.state or "").strip()
        return cls(
            region=settings.region or region or "*",
            selector=dict(settings.selector),
            table=state[len(DYNAMODB_SCHEME) :] if state.startswith(DYNAMODB_SCHEME) else None,
            bucket=settings.evidence.bucket,
            topic_arn=settings.notify.topic_arn,
            ssm_document=settings.memory.ssm_document,
        )

    def arn(self, service: str, resource: str, account: str = "*") -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{account}:{resource}"

    @property
    def tag_condition(self) -> dict[str, Any]:
        return {"StringEquals": {f"aws:ResourceTag/{k}": v for k, v in sorted(self.selector.items())}}

    @property
    def request_tag_condition(self) -> dict[str, Any]:
        """Setting the selector's tags and no other (EC2 CreateTags and CreateOrUpdateTags take both keys)."""
        return {"StringEquals": {f"aws:RequestTag/{k}": v for k, v in sorted(self.selector.items())},
                "ForAllValues:StringEquals": {"aws:TagKeys": sorted(self.selector)}}


@dataclass
class Policy:
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def actions(self) -> list[str]:
        return sorted({a for s in self.document["Statement"] for a in _as_list(s["Action"])})

    def rows(self) -> list[dict[str, str]]:
        """One row per action and statement, for the table."""
        return [
            {"action": a, "resource": ", ".join(_as_list(s["Resource"])), "condition": json.dumps(s["Condition"]) if "Condition" in s else "", "sid": s["Sid"]}
            for s in self.document["Statement"]
            for a in _as_list(s["Action"])
        ]


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def policy(actions: frozenset[str], scope: Scope, code_upload: bool = False, run_command: bool | None = None, agent: bool | None = None) -> Policy:
    """A policy document granting exactly ``actions``, each on the narrowest resource known.

    ``run_command``: the sweep's own document (memory.ssm_document, a root shell) may be sent;
    ``agent``: the CloudWatch agent's install and configure documents may be. None: whenever
    ssm:SendCommand is among the actions (both then)."""
    sends = bool(actions & act_ssm.PERMISSIONS)
    run_command = sends if run_command is None else run_command
    agent = sends if agent is None else agent
    statements: list[dict[str, Any]] = []
    notes: list[str] = []

    def add(sid: str, wanted: frozenset[str], resource: str | list[str], condition: dict[str, Any] | None = None) -> None:
        chosen = sorted(actions & wanted)
        if not chosen:
            return
        statement: dict[str, Any] = {"Sid": sid, "Effect": "Allow", "Action": chosen, "Resource": resource}
        if condition is not None:
            statement["Condition"] = condition
        statements.append(statement)

    add("MutateSelectedInstances", ON_TAGGED_INSTANCES, scope.arn("ec2", "instance/*"), scope.tag_condition)
    add("ReplaceInSelectedGroups", ON_TAGGED_GROUPS, scope.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*"), scope.tag_condition)
    if run_command:
        add(
            "RunCommandDocument",
            ON_DOCUMENT,
            [scope.arn("ssm", f"document/{scope.ssm_document}", account=""), scope.arn("ssm", f"document/{scope.ssm_document}")],
        )
    if agent:  # AWS-owned documents: no account in their ARN
        documents = (agent_install.INSTALL_DOCUMENT, agent_install.CONFIGURE_DOCUMENT)
        add("AgentDocuments", ON_AGENT_DOCUMENTS, [scope.arn("ssm", f"document/{d}", account="") for d in documents])
    add("TagTheFleet", TAGGING, [scope.arn("ec2", "instance/*"), scope.arn("autoscaling", "autoScalingGroup:*:autoScalingGroupName/*")],
        scope.request_tag_condition)
    add("SimulateUsersAndRoles", ON_PRINCIPALS, [f"arn:{scope.partition}:iam::*:user/*", f"arn:{scope.partition}:iam::*:role/*"])
    registry_paths = [scope.arn("ssm", "parameter/orch/healers"), scope.arn("ssm", "parameter/orch/healers/*")]
    takes_lease = bool(actions & (ON_LEASE - ON_REGISTRY))
    lease_paths = [scope.arn("ssm", "parameter/orch/lease/*")]
    add("HealerRegistry", ON_REGISTRY, registry_paths + (lease_paths if takes_lease else []))  # one grant per action
    add("FleetLease", ON_LEASE - ON_REGISTRY, lease_paths)
    if scope.table:
        add("StateTable", ON_TABLE, [scope.arn("dynamodb", f"table/{scope.table}"), scope.arn("dynamodb", f"table/{scope.table}/index/*")])
    elif actions & ON_TABLE:
        add("StateTable", ON_TABLE, "*")
        notes.append(
            "StateTable is on \"*\": no dynamodb://TABLE in the settings (with a SQLite store these actions are used only "
            "when a deployed healer's registration leads orch to its table); pass --state dynamodb://TABLE to scope it"
        )
    if scope.bucket:
        add("EvidenceObjects", ON_BUCKET, f"arn:{scope.partition}:s3:::{scope.bucket}/*")
    elif actions & ON_BUCKET:
        add("EvidenceObjects", ON_BUCKET, "*")
        notes.append("EvidenceObjects is on \"*\": no evidence.bucket in the settings (without one orch writes no evidence object)")
    if scope.topic_arn:
        add("Notify", ON_TOPIC, scope.topic_arn)
    elif actions & ON_TOPIC:
        add("Notify", ON_TOPIC, "*")
        notes.append("Notify is on \"*\": no notify.topic_arn in the settings (without one orch publishes nothing)")
    scoped = ON_TAGGED_INSTANCES | ON_TAGGED_GROUPS | ON_DOCUMENT | ON_REGISTRY | ON_LEASE | ON_TABLE | ON_BUCKET | ON_TOPIC | ON_PRINCIPALS | TAGGING
    if code_upload:
        add("CodeUpload", deploy_permissions.CODE_UPLOAD, "*")
        scoped |= deploy_permissions.CODE_UPLOAD
        notes.append("CodeUpload is on \"*\": the artifact bucket is orch deploy's --bucket; scope it to arn:aws:s3:::BUCKET and BUCKET/*")
    rest = frozenset(actions - scoped)
    add("AnyResource", rest, "*")
    if rest:
        why = "describe, list and metric reads accept no narrower resource"
        if rest & deploy_permissions.STACK:
            why += "; the stack's resources are named by CloudFormation when it creates them"
        notes.append(f"AnyResource is on \"*\": {why}")
    if scope.region == "*":
        notes.append("the ARNs name region \"*\": no region in the settings or --region")
    return Policy({"Version": VERSION, "Statement": statements}, notes)
