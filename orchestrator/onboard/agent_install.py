"""`orch agent install`: the CloudWatch agent installed and configured through SSM Run Command.

Three steps, in order, each only after the one before it succeeded:

1. the agent config (orchestrator.onboard.agent_config) written to an SSM parameter
   (PutParameter, String), unless the parameter already holds exactly that text;
2. ``AWS-ConfigureAWSPackage`` with ``action=Install``, ``name=AmazonCloudWatchAgent``
   (AWS's Distributor package; ``version`` left to its default, the latest);
3. ``AmazonCloudWatch-ManageAgent`` with ``action=configure``, ``mode=ec2``,
   ``optionalConfigurationSource=ssm``, ``optionalConfigurationLocation=<parameter>``,
   ``optionalRestart=yes``, on the instances whose install succeeded.

Run Command is asynchronous: after each SendCommand the command is followed with
ListCommands until it ends (tenacity, injected sleep), and when it did not end in
``Success`` ListCommandInvocations (``Details``) says how each instance ended and in which
step; GetCommandInvocation, asked for each failed step by its ``PluginName``, says why.
Both documents have several steps (ManageAgent has a Linux and a Windows one), and AWS
refuses GetCommandInvocation without ``PluginName`` on such a document
(InvalidPluginName): asked per instance only, one failure would read as the batch's.

Who: running instances whose SSM agent is ``Online`` (DescribeInstanceInformation);
every other one is refused with why. Budget: at most ``max_instances`` a run, in batches
of ``batch_size`` instance ids per SendCommand (AWS takes at most 50). The plan is pure
(``plan_install``); ``--dry-run`` shows it and makes no PutParameter or SendCommand.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from orchestrator.aws import error_code, retry_throttled
from orchestrator.model import Instance
from orchestrator.observe.ssm import Refused, reachable
from orchestrator.onboard.agent_config import tier_for

PERMISSIONS = frozenset({"ssm:DescribeInstanceInformation", "ssm:GetParameter", "ssm:ListCommands", "ssm:ListCommandInvocations",
                         "ssm:GetCommandInvocation"})
MUTATE_PERMISSIONS = frozenset({"ssm:PutParameter", "ssm:SendCommand"})
INSTALL_DOCUMENT = "AWS-ConfigureAWSPackage"
CONFIGURE_DOCUMENT = "AmazonCloudWatch-ManageAgent"
PACKAGE = "AmazonCloudWatchAgent"
MAX_IDS_PER_COMMAND = 50  # SendCommand's InstanceIds: at most 50
RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling"})
STEP_FAILED = frozenset({"Failed", "TimedOut", "Cancelled", "DeliveryTimedOut", "ExecutionTimedOut", "Undeliverable", "Terminated"})
REASON_CHARS = 200
COMMENT = "orch agent install"


def install_parameters() -> dict[str, list[str]]:
    return {"action": ["Install"], "name": [PACKAGE]}


def configure_parameters(parameter_name: str) -> dict[str, list[str]]:
    return {
        "action": ["configure"],
        "mode": ["ec2"],
        "optionalConfigurationSource": ["ssm"],
        "optionalConfigurationLocation": [parameter_name],
        "optionalRestart": ["yes"],
    }


@dataclass(frozen=True, slots=True)
class InstallPlan:
    batches: tuple[tuple[str, ...], ...]
    refused: tuple[Refused, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(i for batch in self.batches for i in batch)


def plan_install(instances: Sequence[Instance], ping: Mapping[str, str | None], max_instances: int, batch_size: int) -> InstallPlan:
    """Who gets the agent, in which batches, and who is refused with why. Pure."""
    if not 1 <= batch_size <= MAX_IDS_PER_COMMAND:
        raise ValueError(f"batch size must be 1 to {MAX_IDS_PER_COMMAND} (SendCommand's limit)")
    eligible, refused = reachable(
        instances, ping, max_instances, "the agent installs on a running instance",
        "not registered with SSM: install the SSM agent and give the instance a profile with AmazonSSMManagedInstanceCore",
    )
    ids = [i.instance_id for i in eligible]
    return InstallPlan(tuple(tuple(ids[s : s + batch_size]) for s in range(0, len(ids), batch_size)), tuple(refused))


@dataclass
class InstallResult:
    parameter_written: bool = False
    commands: list[dict[str, Any]] = field(default_factory=list)  # document, command id, instance ids, status
    installed: dict[str, str] = field(default_factory=dict)  # instance -> install status
    configured: dict[str, str] = field(default_factory=dict)  # instance -> configure status


def parameter_current(ssm: Any, name: str) -> str | None:
    """The parameter's value, or None when it does not exist."""
    try:
        return str(ssm.get_parameter(Name=name)["Parameter"]["Value"])
    except ClientError as exc:
        if error_code(exc) == "ParameterNotFound":
            return None
        raise


@retry_throttled
def _put_parameter(ssm: Any, name: str, value: str) -> None:
    ssm.put_parameter(Name=name, Value=value, Type="String", Overwrite=True, Tier=tier_for(value),
                      Description="CloudWatch agent config written by orch agent install: publishes what orch reads")


@retry_throttled
def _send(ssm: Any, document: str, instance_ids: Sequence[str], parameters: dict[str, list[str]], timeout_seconds: int) -> str:
    reply = ssm.send_command(
        InstanceIds=list(instance_ids), DocumentName=document, Parameters=parameters, Comment=COMMENT, TimeoutSeconds=timeout_seconds
    )
    return str(reply["Command"]["CommandId"])


def wait_for(ssm: Any, command_id: str, instance_ids: Sequence[str], timeout_seconds: float,
             sleep: Callable[[float], None], poll_seconds: float = 5.0) -> dict[str, str]:
    """Instance -> final status of this command; ``TimedOut (orch stopped waiting)`` when it outlived the wait."""

    def status() -> str:
        commands = ssm.list_commands(CommandId=command_id).get("Commands", [])
        return str(commands[0].get("Status", "Pending")) if commands else "Pending"

    # Attempts, not elapsed time, bound the wait: with the sleep injected a test runs it instantly.
    polls = max(1, math.ceil(timeout_seconds / poll_seconds)) + 1
    retrying = Retrying(retry=retry_if_result(lambda s: s in RUNNING), stop=stop_after_attempt(polls), wait=wait_fixed(poll_seconds),
                        sleep=sleep, retry_error_callback=lambda state: state.outcome.result() if state.outcome else "Pending")
    overall = retrying(status)
    if overall == "Success":
        return {i: "Success" for i in instance_ids}
    if overall in RUNNING:
        return {i: "TimedOut (orch stopped waiting)" for i in instance_ids}
    return invocation_statuses(ssm, command_id, instance_ids, overall)


def _why(ssm: Any, command_id: str, instance_id: str, step: str) -> str:
    """The failed step's own words: GetCommandInvocation for that PluginName, first line of its stderr (or stdout)."""
    try:
        found = ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id, PluginName=step)
    except ClientError as exc:
        return f"({error_code(exc)})"
    text = str(found.get("StandardErrorContent") or found.get("StandardOutputContent") or found.get("StatusDetails") or "").strip()
    return text.splitlines()[0][:REASON_CHARS] if text else ""


def invocation_statuses(ssm: Any, command_id: str, instance_ids: Sequence[str], overall: str) -> dict[str, str]:
    """Instance -> how it ended: ``Success``, or ``Failed (step NAME: why)`` for the step that failed."""
    listed: dict[str, Mapping[str, Any]] = {}
    try:
        for page in ssm.get_paginator("list_command_invocations").paginate(CommandId=command_id, Details=True):
            for invocation in page.get("CommandInvocations", []):
                listed[str(invocation.get("InstanceId"))] = invocation
    except ClientError as exc:
        return {i: f"{overall} ({error_code(exc)})" for i in instance_ids}
    found: dict[str, str] = {}
    for instance_id in instance_ids:
        invocation = listed.get(instance_id)
        if invocation is None:
            found[instance_id] = f"{overall} (no invocation listed for it)"
            continue
        status = str(invocation.get("Status", overall))
        failed = [p for p in invocation.get("CommandPlugins", []) if p.get("Status") in STEP_FAILED]
        if status == "Success" or not failed:
            found[instance_id] = status
            continue
        reasons = []
        for plugin in failed:
            step = str(plugin.get("Name"))
            why = _why(ssm, command_id, instance_id, step)
            reasons.append(f"step {step}: {why}" if why else f"step {step} {plugin.get('Status')}")
        found[instance_id] = f"{status} ({'; '.join(reasons)})"
    return found


def execute(
    read: Any,
    mutate: Any,
    plan: InstallPlan,
    parameter_name: str,
    config_text: str,
    *,
    command_timeout_seconds: int = 600,
    wait_seconds: float = 900,
    sleep: Callable[[float], None],
) -> InstallResult:
    """Run the plan: parameter, install, configure. ``read`` and ``mutate`` are SSM clients."""
    result = InstallResult()
    if parameter_current(read, parameter_name) != config_text:
        _put_parameter(mutate, parameter_name, config_text)
        result.parameter_written = True
    for batch in plan.batches:
        install_id = _send(mutate, INSTALL_DOCUMENT, batch, install_parameters(), command_timeout_seconds)
        installed = wait_for(read, install_id, batch, wait_seconds, sleep)
        result.installed.update(installed)
        result.commands.append({"document": INSTALL_DOCUMENT, "command_id": install_id, "instance_ids": list(batch)})
        ready = [i for i in batch if installed[i] == "Success"]
        if not ready:
            continue
        configure_id = _send(mutate, CONFIGURE_DOCUMENT, ready, configure_parameters(parameter_name), command_timeout_seconds)
        result.configured.update(wait_for(read, configure_id, ready, wait_seconds, sleep))
        result.commands.append({"document": CONFIGURE_DOCUMENT, "command_id": configure_id, "instance_ids": ready})
    return result
