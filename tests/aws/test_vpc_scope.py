"""Two stacks in two VPCs of one region: each sweep sees only its VPC, and their leases never exclude each other.

The deployed stack tells its function ``ORCH_VPC_ID`` (cfn/orchestrator.yaml), the
sweep's inventory filters DescribeInstances by ``vpc-id``, and the lease scope names
account, region and VPC. The store here is shared on purpose: the worst case, two
stacks whose sweeps meet in one table, must still keep both fleets apart.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from orchestrator.config import Settings
from orchestrator.state import lease_scope
from orchestrator.state.store import LeaseHeld
from orchestrator.sweep.pipeline import SweepDeps, sweep
from tests.aws.conftest import REGION, launch
from tests.builders import ScriptedProber

ACCOUNT = "123456789012"


def loopback_vpc(aws: Any, second_octet: int) -> tuple[str, str]:
    vpc = aws.ec2.create_vpc(CidrBlock=f"127.{second_octet}.0.0/16")["Vpc"]["VpcId"]
    subnet = aws.ec2.create_subnet(VpcId=vpc, CidrBlock=f"127.{second_octet}.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    return vpc, subnet


def settings_for(vpc: str) -> Settings:
    return Settings.model_validate({"vpc_id": vpc, "safety": {"launch_grace_minutes": 0, "max_unhealthy": "50%"}})


@pytest.fixture
def two_vpcs(aws: Any) -> dict[str, list[str]]:
    fleets = {}
    for octet in (20, 21):
        vpc, subnet = loopback_vpc(aws, octet)
        fleets[vpc] = launch(aws, subnet, 3)
    return fleets


def test_each_sweep_sees_only_its_vpcs_instances(aws, store, two_vpcs) -> None:
    (vpc_a, ids_a), (vpc_b, ids_b) = sorted(two_vpcs.items())
    prober = ScriptedProber(set())
    seen = {}
    for vpc in (vpc_a, vpc_b):
        report = sweep(settings_for(vpc), SweepDeps(clients=aws, store=store, prober=prober, account=ACCOUNT), dry_run=True)
        seen[vpc] = {v.instance_id for v in report.verdicts}
    assert seen == {vpc_a: set(ids_a), vpc_b: set(ids_b)}


def test_the_two_stacks_leases_do_not_exclude_each_other(aws, store, two_vpcs) -> None:
    (vpc_a, ids_a), (vpc_b, ids_b) = sorted(two_vpcs.items())
    now = datetime.now(timezone.utc)
    # Stack B is mid-sweep: it holds its lease in the shared store.
    store.acquire_lease(lease_scope(ACCOUNT, REGION, vpc_b), "stack-b", timedelta(minutes=5), now)
    down = {ids_a[0], ids_b[0]}
    report = sweep(settings_for(vpc_a), SweepDeps(clients=aws, store=store, prober=ScriptedProber(down), account=ACCOUNT))
    summary = report.summary()
    assert [(a["instance_id"], a["action"], a["outcome"]) for a in summary["actions"]] == [(ids_a[0], "reboot", "done")]
    assert store.list_actions(ids_b[0]) == []  # B's unreachable box is B's to heal, not A's
    # And B's own lease still excludes a second healer of B's VPC.
    with pytest.raises(LeaseHeld, match="stack-b"):
        sweep(settings_for(vpc_b), SweepDeps(clients=aws, store=store, prober=ScriptedProber(down), account=ACCOUNT))


def test_same_vpc_in_another_account_or_region_is_another_lease() -> None:
    scopes = {lease_scope(a, r, v) for a in ("111111111111", "222222222222") for r in ("us-east-1", "eu-west-1") for v in ("vpc-1", "vpc-2")}
    assert len(scopes) == 8
