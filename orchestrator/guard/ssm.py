"""The guard's SSM adapter: who can take it, sending the script, reading each box's answer.

- Who: running instances whose SSM agent is ``Online`` (``observe.ssm.ping_status``,
  DescribeInstanceInformation); every other one is refused with why, as ``orch agent install``.
- Send: ``AWS-RunShellScript`` with the script's lines as ``commands``; instances whose
  scripts are identical share a SendCommand, at most 50 instance ids each (SendCommand's
  limit), and at most ``max_instances`` a run.
- Read: GetCommandInvocation per instance with ``PluginName=aws:runShellScript`` (the one
  plugin of that document): its ``Status`` and ``StandardOutputContent`` (the first 24,000
  characters; the status lines are a few hundred). Right after SendCommand an invocation
  may not exist yet (``InvocationDoesNotExist``): that, and a status still running, are
  polled again with tenacity and an injected sleep, up to the wait.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from botocore.exceptions import ClientError
from tenacity import Retrying, retry_if_result, stop_after_attempt, wait_fixed

from orchestrator.aws import error_code, retry_throttled
from orchestrator.guard.plan import GuardSpec
from orchestrator.guard.script import Action, BoxStatus, commands, parse_status
from orchestrator.model import Instance
from orchestrator.observe import ssm as observe_ssm
from orchestrator.observe.ssm import Refused, reachable

DOCUMENT = "AWS-RunShellScript"
PLUGIN = "aws:runShellScript"
MAX_IDS_PER_COMMAND = 50
RUNNING = frozenset({"Pending", "InProgress", "Delayed", "Cancelling", "NotYetStarted"})
PERMISSIONS = frozenset({"ssm:GetCommandInvocation"}) | observe_ssm.PERMISSIONS
MUTATE_PERMISSIONS = frozenset({"ssm:SendCommand"})


@dataclass(frozen=True, slots=True)
class Batch:
    spec: GuardSpec
    instance_ids: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Delivery:
    """Who gets which script, in which SendCommand, and who is refused with why. Pure."""

    batches: tuple[Batch, ...]
    refused: tuple[Refused, ...]

    @property
    def targets(self) -> tuple[str, ...]:
        return tuple(i for b in self.batches for i in b.instance_ids)


def plan_delivery(instances: Sequence[Instance], specs: Mapping[str, GuardSpec], ping: Mapping[str, str | None],
                  max_instances: int, batch_size: int = MAX_IDS_PER_COMMAND) -> Delivery:
    if not 1 <= batch_size <= MAX_IDS_PER_COMMAND:
        raise ValueError(f"batch size must be 1 to {MAX_IDS_PER_COMMAND} (SendCommand's limit)")
    chosen, refused = reachable(
        [i for i in instances if i.instance_id in specs], ping, max_instances, "the guard is applied to a running instance",
        "not registered with SSM: no SSM agent, or no instance profile with AmazonSSMManagedInstanceCore; the guard cannot reach it",
    )
    by_spec: dict[GuardSpec, list[str]] = {}
    for i in chosen:
        by_spec.setdefault(specs[i.instance_id], []).append(i.instance_id)
    batches = [Batch(spec, tuple(ids[s : s + batch_size])) for spec, ids in by_spec.items() for s in range(0, len(ids), batch_size)]
    return Delivery(tuple(batches), tuple(refused))


@retry_throttled
def _send(ssm: Any, instance_ids: Sequence[str], lines: list[str], comment: str, timeout_seconds: int) -> str:
    reply = ssm.send_command(InstanceIds=list(instance_ids), DocumentName=DOCUMENT, Parameters={"commands": lines},
                             Comment=comment[:100], TimeoutSeconds=timeout_seconds)
    return str(reply["Command"]["CommandId"])


@dataclass
class Answer:
    """One instance's invocation: SSM's status, and what the script said."""

    instance_id: str
    command_id: str
    status: str
    response_code: int | None = None
    box: BoxStatus = field(default_factory=BoxStatus)
    stderr: str = ""


def _invocation(ssm: Any, command_id: str, instance_id: str) -> dict[str, Any]:
    try:
        return dict(ssm.get_command_invocation(CommandId=command_id, InstanceId=instance_id, PluginName=PLUGIN))
    except ClientError as exc:
        if error_code(exc) == "InvocationDoesNotExist":
            return {"Status": "Pending"}  # not registered yet: asked again
        raise


def follow(ssm: Any, command_id: str, instance_id: str, wait_seconds: float, sleep: Callable[[float], None],
           poll_seconds: float = 3.0) -> Answer:
    """Poll one invocation until it ends or the wait is over; attempts bound the wait (the sleep is injected)."""
    polls = max(1, math.ceil(wait_seconds / poll_seconds)) + 1
    retrying = Retrying(retry=retry_if_result(lambda r: str(r.get("Status")) in RUNNING), stop=stop_after_attempt(polls),
                        wait=wait_fixed(poll_seconds), sleep=sleep,
                        retry_error_callback=lambda state: state.outcome.result() if state.outcome else {"Status": "Pending"})
    reply = retrying(_invocation, ssm, command_id, instance_id)
    status = str(reply.get("Status", "Pending"))
    if status in RUNNING:
        status = "TimedOut (orch stopped waiting)"
    code = reply.get("ResponseCode")
    return Answer(instance_id, command_id, status, int(code) if isinstance(code, int) else None,
                  parse_status(str(reply.get("StandardOutputContent") or "")), str(reply.get("StandardErrorContent") or ""))


def run(read: Any, mutate: Any, delivery: Delivery, action: Action, *, wait_seconds: float = 300,
        sleep: Callable[[float], None], command_timeout_seconds: int = 120) -> list[Answer]:
    """Send each batch its script, then read every instance's answer. ``read``/``mutate``: SSM clients."""
    answers: list[Answer] = []
    for batch in delivery.batches:
        lines = commands(batch.spec, action)
        command_id = _send(mutate, batch.instance_ids, lines, f"orch guard {action.value}", command_timeout_seconds)
        for instance_id in batch.instance_ids:
            answers.append(follow(read, command_id, instance_id, wait_seconds, sleep))
    return answers
