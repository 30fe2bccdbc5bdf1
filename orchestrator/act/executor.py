"""The one choke point through which every mutation passes.

An executor takes a ``Plan`` and returns an outcome per action. The dry-run executor
returns what would happen and calls nothing; the AWS executor, before each call, asks
the gate (lease still ours, not paused, time left), writes the intent to the journal
(an idempotent record: a redelivered sweep finds it and does not act twice) and
captures evidence; after the call it records the outcome. Nothing else in orch
mutates AWS.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from orchestrator.act import autoscaling, drain, ec2, ssm
from orchestrator.act.drain import DrainPolicy, DrainStep
from orchestrator.act.ec2 import Result, UncertainOutcome
from orchestrator.aws import AWS_CALL_ERRORS, Clients, describe_aws_error
from orchestrator.model import Action, ActionKind, ActionOutcome, OutcomeStatus, Plan


class Journal(Protocol):
    def begin(self, action: Action, evidence: dict[str, Any]) -> str | None:
        """Record the intent; return why not to act (already recorded), or None to go on."""
        ...

    def finish(self, outcome: ActionOutcome) -> None: ...


class Executor(Protocol):
    def execute(self, plan: Plan) -> list[ActionOutcome]: ...


Gate = Callable[[Action], str | None]
CALL_SECONDS = 15.0  # one mutating call and its record, with room for throttling retries
START_SECONDS = 60.0  # StartInstances after a stop, and its record


def expected_seconds(action: Action, stop_wait_seconds: float) -> float:
    """How long an action may take, for the deadline gate: a stop/start waits for the stop."""
    if action.kind is ActionKind.STOP_START:
        return stop_wait_seconds + START_SECONDS
    return CALL_SECONDS
EvidenceCapture = Callable[[Action], dict[str, Any]]
# Kept free of waiting before a deadline: the gate's 30 s, the start call, the records.
WAIT_RESERVE_SECONDS = 60.0


def _no_refusal(action: Action) -> str | None:
    return None


def _no_evidence(action: Action) -> dict[str, Any]:
    return {}


def admit(action: Action, gate: Gate, capture_evidence: EvidenceCapture, journal: Journal) -> ActionOutcome | None:
    """Every executor's way in: the gate, then evidence, then the intent; a refusal is the outcome.

    None means the action may go ahead: its intent is recorded.
    """
    refusal = gate(action)
    if refusal is not None:
        return ActionOutcome(action, OutcomeStatus.SKIPPED, refusal)
    try:
        evidence = capture_evidence(action)
    except Exception as exc:  # evidence is best effort; its absence is recorded, never fatal
        evidence = {"error": f"evidence capture failed: {exc}"}
    why_not = journal.begin(action, evidence)
    if why_not is not None:
        return ActionOutcome(action, OutcomeStatus.SKIPPED, why_not)
    return None


@dataclass
class DryRunExecutor:
    """Same plan, same output, no mutating call: dry run is a different executor, not an if."""

    def execute(self, plan: Plan) -> list[ActionOutcome]:
        return [ActionOutcome(a, OutcomeStatus.DRY_RUN, f"would {a.kind.value}") for a in plan.actions]


@dataclass
class AwsExecutor:
    clients: Clients
    journal: Journal
    gate: Gate = _no_refusal
    capture_evidence: EvidenceCapture = _no_evidence
    stop_wait_seconds: int = 300
    ssm_document: str = "AWS-RunShellScript"
    ssm_commands: tuple[str, ...] = ()
    diagnostic_interrupt: bool = False  # reboot via SendDiagnosticInterrupt (kdump) instead
    time_left: Callable[[], float] | None = None  # seconds before the deadline (a Lambda's)
    poll_seconds: float = 5.0  # while waiting for a stop
    drain_policy: DrainPolicy | None = None  # None: reboot without draining load-balanced instances (as before)
    verify: Callable[[str], bool] | None = None  # does this instance answer again (the probe)? before it is put back
    sleep: Callable[[float], None] = time.sleep
    outcomes: list[ActionOutcome] = field(default_factory=list)

    def execute(self, plan: Plan) -> list[ActionOutcome]:
        self.outcomes = []
        reboots: list[Action] = []
        for action in plan.actions:
            if not self._admit(action):
                continue
            if action.kind is ActionKind.REBOOT and not self.diagnostic_interrupt:
                reboots.append(action)  # batched: one RebootInstances for all of them
            else:
                self._run_one(action)
        if reboots:
            self._run_reboots(reboots)
        return self.outcomes

    def _admit(self, action: Action) -> bool:
        refused = admit(action, self.gate, self.capture_evidence, self.journal)
        if refused is not None:
            self._finish(refused, journal=False)
            return False
        return True

    def _run_reboots(self, actions: list[Action]) -> None:
        """Drain the load-balanced ones (``act.drain``), reboot all in one call, put the drained back once they answer."""
        steps, note = self._drain_steps(actions)
        go: list[Action] = []
        drained: dict[str, DrainStep] = {}
        for action in actions:
            step = steps.get(action.instance_id)
            if step is None:
                go.append(action)
                continue
            try:
                drain.start(self.clients.mutating_client("autoscaling"), self.clients.mutating_client("elbv2"), step)
            except AWS_CALL_ERRORS as exc:
                self._finish(ActionOutcome(action, OutcomeStatus.SKIPPED,
                                           f"not rebooted: it could not be drained first ({step.describe()}): {describe_aws_error(exc)}"))
                continue
            drained[action.instance_id] = step
            go.append(action)
        if drained and self.drain_policy is not None:
            still = drain.wait_drained(self.clients.autoscaling, self.clients.client("elbv2"), list(drained.values()),
                                       self._room(max(s.wait_seconds for s in drained.values())), self.sleep, self.drain_policy.poll_seconds)
            if still:
                note.update({i: "its connections were still draining when the wait ended" for i in still})
        by_id = {a.instance_id: a for a in go}
        if not by_id:
            return
        try:
            results = ec2.reboot(self.clients.mutating_client("ec2"), by_id)
        except UncertainOutcome as exc:
            for action in go:
                self._uncertain(action, exc)
            return
        except AWS_CALL_ERRORS as exc:
            message = describe_aws_error(exc, "ec2:RebootInstances")
            results = {i: Result(OutcomeStatus.FAILED, message) for i in by_id}
        for instance_id, result in results.items():
            detail = result.detail
            if instance_id in drained:
                detail += "; " + self._restore(drained[instance_id], rebooted=result.status is OutcomeStatus.DONE)
            if instance_id in note:
                detail += f"; {note[instance_id]}"
            self._finish(ActionOutcome(by_id[instance_id], result.status, detail))

    def _drain_steps(self, actions: list[Action]) -> tuple[dict[str, DrainStep], dict[str, str]]:
        """Which reboots drain first (pure ``drain.plan_drain`` over what AWS says each belongs to); notes for the outcomes."""
        if self.drain_policy is None or not self.drain_policy.enabled:
            return {}, {}
        try:
            members = drain.memberships(self.clients.autoscaling, self.clients.client("elbv2"), {a.instance_id: a.asg_name for a in actions})
        except AWS_CALL_ERRORS as exc:
            why = f"not drained first: could not tell whether it is behind a load balancer ({describe_aws_error(exc)})"
            return {}, {a.instance_id: why for a in actions}
        steps = {i: step for i, m in members.items() if (step := drain.plan_drain(m, self.drain_policy)) is not None}
        return steps, {}

    def _restore(self, step: DrainStep, rebooted: bool) -> str:
        """Put a drained instance back: at once when it was not rebooted, else once it answers (bounded)."""
        assert self.drain_policy is not None
        if rebooted and (self.verify is None or not drain.wait_answering(
                self.verify, step.instance_id, self._room(self.drain_policy.verify_seconds), self.sleep, self.drain_policy.poll_seconds)):
            return f"drained first ({step.describe()}) and left so: it did not answer in time; put it back with {step.put_back_hint()}"
        try:
            drain.put_back(self.clients.mutating_client("autoscaling"), self.clients.mutating_client("elbv2"), step)
        except AWS_CALL_ERRORS as exc:
            return f"drained first ({step.describe()}) and could not be put back ({describe_aws_error(exc)}): {step.put_back_hint()}"
        return f"drained first ({step.describe()}), put back {'after it answered' if rebooted else '(not rebooted)'}"

    def _room(self, wanted: float) -> float:
        """``wanted`` seconds of waiting, cut to end before the deadline."""
        if self.time_left is None:
            return wanted
        return max(0.0, min(wanted, self.time_left() - WAIT_RESERVE_SECONDS))

    def _run_one(self, action: Action) -> None:
        try:
            result = self._call(action)
        except UncertainOutcome as exc:
            self._uncertain(action, exc)
            return
        except AWS_CALL_ERRORS as exc:
            self._finish(ActionOutcome(action, OutcomeStatus.FAILED, describe_aws_error(exc)))
            return
        self._finish(ActionOutcome(action, result.status, result.detail))

    def _call(self, action: Action) -> Result:
        if action.kind is ActionKind.REBOOT:  # only here when diagnostic_interrupt is on
            return ec2.diagnostic_interrupt(self.clients.mutating_client("ec2"), action.instance_id)
        if action.kind is ActionKind.STOP_START:
            graceful, forced = self._stop_waits()
            return ec2.stop_start(self.clients.mutating_client("ec2"), action.instance_id, graceful, forced, self.poll_seconds)
        if action.kind is ActionKind.START:
            _, forced = self._stop_waits()
            return ec2.finish_stop_start(self.clients.mutating_client("ec2"), action.instance_id, forced, self.poll_seconds)
        if action.kind is ActionKind.REPLACE:
            if action.asg_name is None:
                return Result(OutcomeStatus.SKIPPED, "replace needs an Auto Scaling group; standalone replacement is not enabled")
            return autoscaling.mark_unhealthy(self.clients.mutating_client("autoscaling"), action.instance_id)
        if action.kind is ActionKind.RUN_COMMAND:
            return ssm.run_command(self.clients.mutating_client("ssm"), action.instance_id, self.ssm_document, self.ssm_commands)
        raise AssertionError(f"unhandled action kind {action.kind}")

    def _stop_waits(self) -> tuple[float, float]:
        """(graceful, forced) seconds to wait for a stop, cut to end before the deadline.

        Waiting past it would kill the Lambda mid-wait with nothing recorded; stopping
        the wait in time records "start pending" and the next sweep finishes the job.
        """
        graceful, forced = float(self.stop_wait_seconds), float(ec2.FORCE_WAIT_SECONDS)
        if self.time_left is None:
            return graceful, forced
        room = max(0.0, self.time_left() - WAIT_RESERVE_SECONDS)
        graceful = min(graceful, room * 2 / 3)
        return graceful, min(forced, room - graceful)

    def _uncertain(self, action: Action, exc: UncertainOutcome) -> None:
        state = ec2.current_state(self.clients.ec2, action.instance_id)
        detail = f"no answer ({exc}); instance is now {state}; not repeated, the next sweep verifies"
        self._finish(ActionOutcome(action, OutcomeStatus.UNCERTAIN, detail))

    def _finish(self, outcome: ActionOutcome, journal: bool = True) -> None:
        self.outcomes.append(outcome)
        if journal:
            self.journal.finish(outcome)
