"""Exit codes scripts can trust: which outcomes of a sweep make `orch heal` / `orch scan` exit 1.

A pure function of the report; each row is one situation an operator meets.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from orchestrator.cli.common import Exit
from orchestrator.cli.sweep_cmds import heal_exit, scan_exit
from orchestrator.model import Action, ActionKind, ActionOutcome, Blocked, BlockRule, OutcomeStatus, Plan, ProbeOutcome, VerdictKind
from orchestrator.sweep.pipeline import Mode, SweepReport
from tests.builders import NOW, facts, instance, verdict

OPT_OUT = "orch:skip"
HEALTHY = facts(instance(1))
SICK = facts(instance(2), ProbeOutcome.BANNER_TIMEOUT)
OPTED = facts(instance(3, tags={OPT_OUT: ""}), ProbeOutcome.BANNER_TIMEOUT)
REBOOT = Action(SICK.instance.instance_id, ActionKind.REBOOT, "SSH banner timeout")


def report(blocked: tuple[Blocked, ...] = (), outcomes: tuple[OutcomeStatus, ...] = (), partial: bool = False,
           fleet: tuple = (HEALTHY, SICK, OPTED)) -> SweepReport:
    kinds = {HEALTHY.instance.instance_id: VerdictKind.HEALTHY}
    made = SweepReport("s1", Mode.HEAL, False, NOW, facts=list(fleet),
                       verdicts=[verdict(f, kinds.get(f.instance.instance_id, VerdictKind.UNREACHABLE)) for f in fleet])
    actions = (REBOOT,) if outcomes else ()
    made.plan = Plan(actions=actions, blocked=blocked)
    made.outcomes = [ActionOutcome(REBOOT, status) for status in outcomes]
    made.partial = partial
    return made


def block(rule: BlockRule, who: str = SICK.instance.instance_id) -> Blocked:
    return Blocked(who, ActionKind.REBOOT, f"blocked: {rule.value}", rule)


HEAL_ROWS = [
    ("nothing to do", report(), Exit.OK),
    ("an action done", report(outcomes=(OutcomeStatus.DONE,)), Exit.OK),
    ("an action uncertain: the next sweep verifies", report(outcomes=(OutcomeStatus.UNCERTAIN,)), Exit.OK),
    ("a dry run", report(outcomes=(OutcomeStatus.DRY_RUN,)), Exit.OK),
    ("opted out (orch:skip)", report(blocked=(block(BlockRule.OPT_OUT, OPTED.instance.instance_id),)), Exit.OK),
    ("in flight awaiting verification", report(blocked=(block(BlockRule.IN_FLIGHT),)), Exit.OK),
    ("not confirmed yet, launch grace, lifecycle", report(blocked=(block(BlockRule.DEBOUNCE),)), Exit.OK),
    ("done, and the opted-out one left alone", report(blocked=(block(BlockRule.OPT_OUT, OPTED.instance.instance_id),),
                                                      outcomes=(OutcomeStatus.DONE,)), Exit.OK),
    ("circuit breaker", report(blocked=(block(BlockRule.BREAKER),)), Exit.UNHEALTHY),
    ("paused", report(blocked=(block(BlockRule.PAUSED),)), Exit.UNHEALTHY),
    ("budget", report(blocked=(block(BlockRule.BUDGET),)), Exit.UNHEALTHY),
    ("quarantine", report(blocked=(block(BlockRule.QUARANTINE),)), Exit.UNHEALTHY),
    ("a rule that needs a human", report(blocked=(block(BlockRule.LADDER),)), Exit.UNHEALTHY),
    ("a block with no rule given counts as needing a human", report(blocked=(Blocked("i-1", ActionKind.REBOOT, "why"),)), Exit.UNHEALTHY),
    ("opted out, and the breaker open for another", report(blocked=(block(BlockRule.OPT_OUT, OPTED.instance.instance_id),
                                                                   block(BlockRule.BREAKER))), Exit.UNHEALTHY),
    ("a failed action", report(outcomes=(OutcomeStatus.FAILED,)), Exit.UNHEALTHY),
    ("a skipped action (not confirmed at the prompt)", report(outcomes=(OutcomeStatus.SKIPPED,)), Exit.UNHEALTHY),
    ("a partial sweep", report(partial=True), Exit.UNHEALTHY),
    ("no instance matched", report(fleet=()), Exit.UNHEALTHY),
]


@pytest.mark.parametrize("why, made, code", HEAL_ROWS, ids=[r[0] for r in HEAL_ROWS])
def test_heal_exit(why, made, code):
    assert heal_exit(made) is code


SCAN_ROWS = [
    ("all healthy", (HEALTHY,), Exit.OK),
    ("only the opted-out one is sick", (HEALTHY, OPTED), Exit.OK),
    ("a sick one", (HEALTHY, SICK), Exit.UNHEALTHY),
    ("nothing matched", (), Exit.UNHEALTHY),
]


@pytest.mark.parametrize("why, fleet, code", SCAN_ROWS, ids=[r[0] for r in SCAN_ROWS])
def test_scan_exit(why, fleet, code):
    made = replace(report(fleet=fleet), mode=Mode.SCAN)
    assert scan_exit(made, OPT_OUT) is code
