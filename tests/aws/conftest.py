"""Moto fixtures: a loopback VPC (127.20.0.0/16) so no instance ever has a routable IP."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from orchestrator.aws import Clients
from orchestrator.state.sqlite import SqliteStore
from tests.faults import FaultPlan, no_backoff

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clients]:
    # moto's EC2 otherwise makes ~1,300 public AMIs for every account and region it sets up,
    # each with a random id: a third of this tier's time. These tests launch from an AMI id
    # no list holds (as moto's own tests do) and never describe images; the sandbox, which
    # picks an Amazon Linux image, builds its own moto outside this fixture and keeps them.
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    with mock_aws():
        yield Clients(boto3.Session(region_name=REGION))


@pytest.fixture
def plan(aws: Clients) -> FaultPlan:
    """Faults injected into every client of ``aws`` (tests/faults.py)."""
    made = FaultPlan()
    made.attach_clients(aws)
    return made


@pytest.fixture
def backoffs(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Instant retries: the same decisions, no sleeping."""
    return no_backoff(monkeypatch)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    s = SqliteStore(tmp_path / "state.db")
    yield s
    s.close()


@pytest.fixture
def subnet(aws: Clients) -> str:
    ec2 = aws.ec2
    vpc = ec2.create_vpc(CidrBlock="127.20.0.0/16")["Vpc"]["VpcId"]
    return ec2.create_subnet(VpcId=vpc, CidrBlock="127.20.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]


def launch(aws: Clients, subnet: str, count: int, tags: dict[str, str] | None = None) -> list[str]:
    tag_list = [{"Key": k, "Value": v} for k, v in (tags if tags is not None else {"orch:managed": "true"}).items()]
    kwargs: dict[str, Any] = {}
    if tag_list:
        kwargs["TagSpecifications"] = [{"ResourceType": "instance", "Tags": tag_list}]
    reply = aws.ec2.run_instances(ImageId="ami-12c6146b", MinCount=count, MaxCount=count, InstanceType="t3.micro", SubnetId=subnet, **kwargs)
    return [i["InstanceId"] for i in reply["Instances"]]
