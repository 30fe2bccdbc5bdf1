"""Moto fixtures: a loopback VPC (127.20.0.0/16) so no instance ever has a routable IP."""

from __future__ import annotations

from typing import Any, Iterator

import boto3
import pytest
from moto import mock_aws

from orchestrator.aws import Clients

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[Clients]:
    with mock_aws():
        yield Clients(boto3.Session(region_name=REGION))


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
