"""The IAM actions orch calls, as the union of what each AWS adapter declares.

The CloudFormation role is checked against this set by a test: nothing missing (a
heal that fails on AccessDenied at 3 a.m.) and nothing extra (least privilege).
"""

from __future__ import annotations

from orchestrator import notify
from orchestrator.act import autoscaling as act_autoscaling
from orchestrator.act import ec2 as act_ec2
from orchestrator.act import evidence
from orchestrator.act import ssm as act_ssm
from orchestrator.observe import asg, console, inventory, metrics, probe, procstat, ssm, status
from orchestrator.state import dynamodb

READ = frozenset().union(
    inventory.PERMISSIONS, status.PERMISSIONS, metrics.PERMISSIONS, asg.PERMISSIONS, console.PERMISSIONS, probe.PERMISSIONS, ssm.PERMISSIONS,
    procstat.PERMISSIONS,
)
MUTATE = frozenset().union(act_ec2.PERMISSIONS, act_autoscaling.PERMISSIONS, act_ssm.PERMISSIONS) - READ
RECORD = frozenset().union(dynamodb.PERMISSIONS, evidence.PERMISSIONS, notify.PERMISSIONS)

ALL: frozenset[str] = READ | MUTATE | RECORD
