"""The served sandbox heals itself on the deployed stack's schedule, through the deployed Lambda's entry.

In a real deployment nobody types `orch heal`: the stack (cfn/orchestrator.yaml) has
EventBridge invoke ``lambdas.heal.handler`` every ``ScheduleMinutes`` (default 5). A served
sandbox that only healed when a person ran `orch heal` showed a fleet wedging with nobody
coming; here the living driver (orchestrator.sandbox.living) makes that invocation itself,
every ``--schedule-minutes`` simulated minutes, the first one interval after start:

- the event is EventBridge's scheduled event (``source`` aws.events, ``detail-type``
  Scheduled Event, the rule's ARN in ``resources``), which the handler validates;
- the environment is the one the stack gives the function (``Function.Environment``) for
  a ``Mode=heal`` stack over this sandbox: its VPC, topic, bucket and probe port, the stack's
  defaults for the rest, and what the sandbox shortens for every orch in it (launch grace,
  debounce, probe timings: the export lines' values). Its store is the sandbox's SQLite
  file, the one `orch heal` in another shell uses (a stack's is its DynamoDB table);
- the context is a Lambda context: the function's ARN (the account, for the lease scope)
  and the deadline of the stack's ``TimeoutSeconds``, read on the sandbox's clock;
- the handler's JSON log lines (CloudWatch Logs, deployed) go to a file, and one short
  line per sweep says on the server's stderr what it did or why it did not.

Like the stack, the sandbox registers its healer in SSM (``/orch/healers/orch-sandbox``,
orchestrator.estate.registry), so `orch heal` by hand uses the same store, VPC and account,
hence the same lease: a scheduled sweep and a sweep by hand never act at once. The one that
finds the lease held does not act: `orch heal` exits 4 (or waits, with ``--wait``), and the
scheduled sweep skips, as the deployed function does, until the next slot.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Callable, Mapping, TextIO

import boto3

from lambdas.heal import HandlerError, Hooks, handler
from orchestrator.aws import Clients
from orchestrator.config import Settings
from orchestrator.echo import clip
from orchestrator.estate.registry import PREFIX as REGISTRY_PREFIX
from orchestrator.model import ActionKind
from orchestrator.sandbox.living import Driver, Every
from orchestrator.sandbox.server import FAKE_KEY

if TYPE_CHECKING:
    from orchestrator.sandbox.fleet import Sandbox

STACK = "orch-sandbox"  # the stack the sandbox stands in for: ORCH_STACK and its registration's name
FUNCTION = f"{STACK}-Function"
# cfn/orchestrator.yaml's defaults (tests/unit/test_sandbox_schedule.py reads the template):
DEFAULT_SCHEDULE_MINUTES = 5  # ScheduleMinutes
TIMEOUT_SECONDS = 600  # TimeoutSeconds: the context's deadline
SELECTOR = ("orch:managed", "true")  # SelectorKey, SelectorValue (the sandbox's fleet carries this tag)
STACK_DEFAULTS = {  # the function's variables that are the parameters' defaults here
    "ORCH_SAFETY_MAX_ACTIONS_PER_SWEEP": "3",
    "ORCH_SAFETY_MAX_ACTIONS_PER_HOUR": "20",
    "ORCH_SAFETY_MAX_UNHEALTHY": "20%",
    "ORCH_MEMORY_PROACTIVE": "off",
    "ORCH_MEMORY_SSM_DOCUMENT": "AWS-RunShellScript",
    "ORCH_MEMORY_SSM_COMMANDS": "",
    "ORCH_EVIDENCE_DIAGNOSTIC_INTERRUPT": "false",
}
DONE = {ActionKind.REBOOT: "rebooted", ActionKind.STOP_START: "stop-started", ActionKind.REPLACE: "replaced",
        ActionKind.RUN_COMMAND: "ran the restart command on", ActionKind.START: "started"}  # every kind: a test checks


def function_environment(exported: Mapping[str, str], vpc_id: str, schedule_minutes: float, time_scale: float = 1.0) -> dict[str, str]:
    """The function's environment for a ``Mode=heal`` stack over this sandbox.

    ``exported``: the sandbox's export lines (orchestrator.sandbox.demo.exports): the AWS
    variables the runtime would set (region), the store, topic, bucket, probe port and the
    settings the sandbox shortens for every orch in it. ``ORCH_SWEEP_INTERVAL_MINUTES`` is
    what the function is told about its own cadence, in its own (wall) clock: at
    ``--time-scale 10`` five simulated minutes are 30 s, said as the 1-minute floor.
    """
    return {
        **exported,
        **STACK_DEFAULTS,
        "ORCH_SELECTOR": "=".join(SELECTOR),
        "ORCH_DRY_RUN": "false",  # Mode=heal: a sandbox is there to be healed
        "ORCH_VPC_ID": vpc_id,
        "ORCH_STACK": STACK,
        "ORCH_SWEEP_INTERVAL_MINUTES": f"{max(1.0, schedule_minutes / time_scale):g}",
    }


def scheduled_event(at: datetime, region: str, account: str) -> dict[str, Any]:
    """What EventBridge sends a rule's target when its schedule fires (the documented example's shape)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{STACK}-ScheduleRule"],
        "detail": {},
    }


@dataclass
class LambdaContext:
    """The parts of Lambda's context object the handler reads: the function's ARN and its deadline."""

    invoked_function_arn: str
    deadline: datetime
    clock: Callable[[], datetime]
    function_name: str = FUNCTION
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock()).total_seconds() * 1000))


def register(ssm: Any, region: str, account: str, vpc_id: str, state: str) -> str:
    """The stack's ``HealerRegistration``: where a manual orch finds this healer's store and scope."""
    name = f"{REGISTRY_PREFIX}{STACK}"
    value = {"stack": STACK, "region": region, "account": account, "vpc_id": vpc_id, "selector": dict([SELECTOR]), "state": state,
             "mode": "heal"}
    ssm.put_parameter(Name=name, Type="String", Value=json.dumps(value), Overwrite=True,
                      Description="orch healer registration (store, scope, selector); deleted with the stack")
    return name


@dataclass
class ScheduledHeal:
    """One scheduled invocation of the deployed handler per call; one line said about it, failures included.

    Everything it needs of the sandbox is given: ``wall`` (the sandbox's wall clock, the
    sweep's and the deadline's clock: tests inject it), ``names`` (instance id -> Name, for
    the line), ``log`` (the function's log group: the handler's JSON lines).
    """

    environ: Mapping[str, str]
    region: str
    account: str
    endpoint_url: str
    wall: Callable[[], datetime]
    names: Callable[[], Mapping[str, str]]
    say: Callable[[str], None]
    log: TextIO
    hooks: Hooks = field(init=False)
    results: list[dict[str, Any]] = field(default_factory=list)  # what each invocation returned, oldest first

    def __post_init__(self) -> None:
        # One Hooks for the server's life, as one warm container: discovered metric dimensions are reused.
        self.hooks = Hooks(clients=self._clients, clock=self.wall, environ=self.environ)

    def _clients(self, settings: Settings) -> Clients:
        """The production clients, pointed at the sandbox's endpoint with its fake keys."""
        session = boto3.Session(aws_access_key_id=FAKE_KEY, aws_secret_access_key=FAKE_KEY, region_name=settings.region or self.region)
        return Clients(session, endpoint_url=self.endpoint_url)

    def __call__(self) -> dict[str, Any] | None:
        at = self.wall()
        context = LambdaContext(f"arn:aws:lambda:{self.region}:{self.account}:function:{FUNCTION}",
                                at + timedelta(seconds=TIMEOUT_SECONDS), self.wall)
        try:
            with contextlib.redirect_stdout(self.log):
                result = handler(scheduled_event(at, self.region, self.account), context, self.hooks)
        except HandlerError as exc:  # the handler logged it; the invocation failed, the next slot tries again
            self.say(f"{at:%H:%M:%S} scheduled sweep failed: {exc}")
            return None
        except Exception as exc:  # noqa: BLE001 - whatever else a sweep raises is told; the server keeps serving
            self.say(f"{at:%H:%M:%S} scheduled sweep failed: {type(exc).__name__}: {clip(str(exc), 300, quote=False)}")
            return None
        self.results.append(result)
        self.say(f"{at:%H:%M:%S} {told(result, self.names())}")
        return result


def healer(sb: Sandbox, exported: Mapping[str, str], schedule_minutes: float, time_scale: float, say: Callable[[str], None],
           log: TextIO) -> ScheduledHeal:
    """The sandbox's deployed healer: registered as the stack registers it, invoked by the driver's schedule."""
    environ = function_environment(exported, sb.vpc_id, schedule_minutes, time_scale)
    register(sb.client("ssm"), sb.region, sb.account_id, sb.vpc_id, environ["ORCH_STATE"])
    return ScheduledHeal(environ, sb.region, sb.account_id, sb.endpoint_url, wall=lambda: sb.wall(),
                         names=lambda: {s.instance_id: s.name for s in sb.instances}, say=say, log=log)


def living_driver(sb: Sandbox, exported: Mapping[str, str], time_scale: float, schedule_minutes: float, say: Callable[[str], None],
                  log: TextIO | None, on_error: Callable[[BaseException], None]) -> Driver:
    """`orch sandbox --serve`'s driver: the fleet lives and, unless ``schedule_minutes`` is 0, heals on the schedule.

    ``log`` receives the handler's JSON lines (needed when the schedule is on). With the
    schedule off nothing is registered and nothing sweeps: the fleet is left to a person.
    """
    schedule = []
    if schedule_minutes > 0:
        if log is None:
            raise ValueError("a scheduled healer needs a log for its lines")
        schedule.append(Every(schedule_minutes, healer(sb, exported, schedule_minutes, time_scale, say, log)))
    return Driver(sb, time_scale, on_error=on_error, schedule=schedule)


def told(result: Mapping[str, Any], names: Mapping[str, str]) -> str:
    """One short line: the fleet as the sweep saw it, then what it did, held back, or why it did not sweep.

    ``12:05:00 scheduled sweep, 24 instances (22 healthy, 2 unreachable): rebooted crawler-3 (out of memory)``
    """
    if result.get("skipped"):
        return f"scheduled sweep skipped: {result['skipped']}; the next one tries again"
    parts = []
    for action in result.get("actions", []):
        who = names.get(action["instance_id"]) or action["instance_id"]
        evidence = action.get("evidence") or {}
        why = "out of memory" if evidence.get("console_cause") == "oom" else _first_clause(action["reason"])
        if action["outcome"] == "done":
            parts.append(f"{DONE[ActionKind(action['action'])]} {who} ({why})")
        else:
            detail = clip(action.get("detail") or "", 100, quote=False)
            parts.append(f"{action['action']} {who} ({why}): {action['outcome']}" + (f", {detail}" if detail else ""))
    blocked = result.get("blocked", [])
    if blocked:
        parts.append(f"{len(blocked)} held back ({', '.join(sorted({b['rule'] for b in blocked}))})")
    verdicts = sorted(result.get("verdicts", {}).items(), key=lambda kv: (kv[0] != "healthy", kv[0]))
    fleet = f"{result.get('instances', 0)} instances" + (f" ({', '.join(f'{n} {kind}' for kind, n in verdicts)})" if verdicts else "")
    return f"scheduled sweep, {fleet}: {'; '.join(parts) or 'nothing to do'}"


def _first_clause(reason: str, limit: int = 60) -> str:
    """The reason's first clause, for a line that must stay short (the log line has it whole)."""
    clause = reason.split(";")[0].split(" (")[0].strip()
    return clause if len(clause) <= limit else clause[: limit - 1] + "…"
