"""The IAM actions orch calls, as the union of what each AWS adapter declares.

The CloudFormation role is checked against this by a test, per combination of the
stack's feature parameters: nothing missing (a heal that fails on AccessDenied at
3 a.m.) and nothing extra (least privilege). Run-command (a root shell on every
selected instance) and the diagnostic interrupt are granted only when the settings
that use them are on; deleting from the state table only `orch resume` does.
Onboarding (`orch init`, `orch agent check`, `orch agent install`) is done by a person,
never by the stack: its actions are declared here for the person's policy, not the role.
"""

from __future__ import annotations

from orchestrator.act import autoscaling as act_autoscaling
from orchestrator.act import drain as act_drain
from orchestrator.act import ec2 as act_ec2
from orchestrator.act import evidence
from orchestrator.act import ssm as act_ssm
from orchestrator.alerting import notify
from orchestrator.config import Settings
from orchestrator.estate import registry
from orchestrator.guard import facts as guard_facts
from orchestrator.guard import ssm as guard_ssm
from orchestrator.observe import asg, console, inventory, metrics, probe, procstat, ssm, status, stoppable
from orchestrator.onboard import agent_check, agent_install, discover
from orchestrator.state import dynamodb, ssm_lease

READ = frozenset().union(
    inventory.PERMISSIONS, status.PERMISSIONS, metrics.PERMISSIONS, asg.PERMISSIONS, console.PERMISSIONS, probe.PERMISSIONS,
    stoppable.PERMISSIONS, procstat.PERMISSIONS, registry.PERMISSIONS,
)
MUTATE = frozenset().union(act_ec2.PERMISSIONS, act_autoscaling.PERMISSIONS) - READ
RECORD = frozenset().union(
    dynamodb.PERMISSIONS - dynamodb.CLI_ONLY_PERMISSIONS, evidence.PERMISSIONS, notify.PERMISSIONS, ssm_lease.PERMISSIONS
)
SWEEP = READ | MUTATE | RECORD
"""What every sweep may call, whatever the settings."""

RUN_COMMAND = frozenset().union(ssm.PERMISSIONS, act_ssm.PERMISSIONS)  # memory.proactive = ssm, or chronic restarts
DIAGNOSTIC_INTERRUPT = act_ec2.DIAGNOSTIC_INTERRUPT_PERMISSIONS  # evidence.diagnostic_interrupt
DRAIN = act_drain.PERMISSIONS  # safety.drain_seconds: Standby / deregister load-balanced instances around a reboot
CLI_ONLY = dynamodb.CLI_ONLY_PERMISSIONS

INIT = frozenset().union(discover.PERMISSIONS, discover.TAG_PERMISSIONS)  # `orch init`: find the fleet, tag it
AGENT_CHECK = agent_check.PERMISSIONS  # `orch agent check`: the inventory and the agent's metrics
AGENT_INSTALL = frozenset().union(inventory.PERMISSIONS, agent_install.PERMISSIONS, agent_install.MUTATE_PERMISSIONS)
ONBOARD = INIT | AGENT_CHECK | AGENT_INSTALL
"""What a person onboarding a fleet calls; never in the stack's role."""

GUARD = frozenset().union(inventory.PERMISSIONS, guard_facts.PERMISSIONS, guard_ssm.PERMISSIONS, guard_ssm.MUTATE_PERMISSIONS)
"""`orch guard`: a root shell on the named instances through Run Command; a person's, never the role's."""

ALL: frozenset[str] = SWEEP | RUN_COMMAND | DIAGNOSTIC_INTERRUPT | CLI_ONLY | ONBOARD | GUARD


def for_settings(settings: Settings) -> frozenset[str]:
    """Exactly what a sweep with these settings may call: what its role must grant."""
    needed = set(SWEEP)
    chronic_commands = bool(settings.memory.ssm_commands) and settings.chronic.action in ("auto", "ssm")
    if settings.memory.proactive == "ssm" or chronic_commands:
        needed |= RUN_COMMAND
    if settings.evidence.diagnostic_interrupt:
        needed |= DIAGNOSTIC_INTERRUPT
    if settings.safety.drain_seconds:
        needed |= DRAIN
    return frozenset(needed)
